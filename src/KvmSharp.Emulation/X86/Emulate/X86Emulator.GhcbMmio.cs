// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// MMIO through the GHCB (SVM_VMGEXIT_MMIO_READ / _WRITE; arch/x86/kvm/svm/sev.c sev_handle_vmgexit →
/// setup_vmgexit_scratch, x86.c kvm_sev_es_mmio and complete_sev_es_emulated_mmio): sw_exit_info_1 = the GPA,
/// sw_exit_info_2 = the length, sw_scratch = the data buffer. In-kernel MMIO devices take it 8 bytes at a time as far
/// as they can (vcpu_mmio_read/write: the in-kernel local APIC first, then KVM_MMIO_BUS — OVMF programs its xAPIC
/// timer this way under SEV-SNP); the rest goes
/// to userspace as KVM_EXIT_MMIO pieces of at most 8 bytes, a read's data copied into the scratch buffer as each piece
/// completes on the next KVM_RUN. This is how the guest's #VC handler finishes an access that raised #VC(SVM_EXIT_NPF).
/// </summary>
internal sealed partial class X86Emulator
{
    private ulong _mmioFragGpa, _mmioFragData;
    private ulong _mmioFragLength;
    private bool _mmioFragWrite;

    /// <summary>The MMIO cases of the GHCB switch; true when an exit to userspace is set up.</summary>
    private bool BeginGhcbMmio(bool write, ulong gpa, ulong length)
    {
        // setup_vmgexit_scratch(svm, !write, exit_info_2): a read's buffer is synced back to the guest.
        if (!SetupScratch(length, out long errno))
        {
            if (errno == 0) return false;
            _exit = new StepOutcome(true, errno);
            _vmgexitCompletion = VmgexitCompletion.GhcbUnmap;
            return true;
        }
        ulong data = _ghcbScratch;
        // write_emultor / read_emultor.read_write_mmio (vcpu_mmio_write/vcpu_mmio_read): the local APIC's
        // kvm_iodevice, then the MMIO bus, at most 8 bytes a time, until neither takes a piece.
        ulong handled = 0;
        Span<byte> piece = stackalloc byte[8];
        while (handled < length)
        {
            int n = (int)Math.Min(8, length - handled);
            var chunk = piece[..n];
            bool taken;
            if (write)
            {
                HostGuestAccess(data + handled, chunk, write: false);
                ulong v = 0;
                for (int b = 0; b < n; b++) v |= (ulong)chunk[b] << (8 * b);
                taken = TryApicMmio(gpa + handled, chunk, write: true) || _kvm.IoBus.Write(KvmMain.KvmBus.Mmio, _vcpu, gpa + handled, n, v);
            }
            else
            {
                taken = TryApicMmio(gpa + handled, chunk, write: false) || _kvm.IoBus.Read(KvmMain.KvmBus.Mmio, _vcpu, gpa + handled, chunk);
                if (taken) HostGuestAccess(data + handled, chunk, write: true);
            }
            if (!taken) break;
            handled += (ulong)n;
        }
        if (handled == length) return false;
        _mmioFragGpa = gpa + handled;
        _mmioFragData = data + handled;
        _mmioFragLength = length - handled;
        _mmioFragWrite = write;
        MmioFragmentExit();
        return ExitWithGhcbMapped(VmgexitCompletion.GhcbMmio);
    }

    /// <summary>KVM_EXIT_MMIO for the current piece: phys_addr, len = min(8, what is left), is_write, a write's data.</summary>
    private void MmioFragmentExit()
    {
        int n = (int)Math.Min(8, _mmioFragLength);
        Span<byte> bytes = stackalloc byte[8];
        if (_mmioFragWrite) HostGuestAccess(_mmioFragData, bytes[..n], write: false);
        _run.SetMmioExit(_mmioFragGpa, bytes[..n], n, _mmioFragWrite);
    }

    /// <summary>
    /// complete_sev_es_emulated_mmio: a read's piece goes into the buffer; more left → the next piece exits again
    /// (true); else the VMGEXIT is done ("RIP has already been advanced").
    /// </summary>
    private bool CompleteGhcbMmio()
    {
        int n = (int)Math.Min(8, _mmioFragLength);
        if (!_mmioFragWrite)
        {
            Span<byte> bytes = stackalloc byte[8];
            _run.MmioData(n).CopyTo(bytes);
            HostGuestAccess(_mmioFragData, bytes[..n], write: true);
        }
        if (_mmioFragLength <= 8) return false;
        _mmioFragData += (ulong)n;
        _mmioFragGpa += (ulong)n;
        _mmioFragLength -= (ulong)n;
        MmioFragmentExit();
        _vmgexitCompletion = VmgexitCompletion.GhcbMmio;
        return true;
    }
}
