// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// String port I/O through the GHCB (SVM_EXIT_IOIO with SVM_IOIO_STR_MASK; arch/x86/kvm/svm/svm.c io_interception →
/// sev.c sev_es_string_io → x86.c kvm_sev_es_string_io, kvm_sev_es_outs / kvm_sev_es_ins and their
/// complete_sev_es_emulated_outs / complete_sev_es_emulated_ins callbacks). The guest's #VC handler puts the data in the
/// scratch area (sw_scratch, checked by setup_vmgexit_scratch for count × size bytes), the REP count in
/// sw_exit_info_2. KVM moves at most PAGE_SIZE / size elements at a time (the pio_data page): each batch goes to an
/// in-kernel device element by element (emulator_pio_in_out → kernel_pio), or when the first element finds no device
/// to userspace as one KVM_EXIT_IO with io.count = the batch and the data at io.data_offset; the next KVM_RUN completes
/// it (an IN batch's data is copied into the scratch area) and goes on with the next batch, exiting again as needed.
/// A scratch area outside the GHCB is read and written in place (KVM copies it and writes it back when the vCPU
/// enters again — the same bytes in the end).
/// </summary>
internal sealed partial class X86Emulator
{
    private const int PioPageSize = 4096;

    private ulong _sevPioData;
    private uint _sevPioCount;
    private int _sevPioSize, _sevPioBatch;
    private ushort _sevPioPort;
    private bool _sevPioIn;

    /// <summary>
    /// sev_es_string_io: "if (svm-&gt;vmcb-&gt;control.exit_info_2 &gt; INT_MAX) return -EINVAL;", "if
    /// (unlikely(check_mul_overflow(count, size, &amp;bytes))) return -EINVAL;" (KVM_RUN fails), then
    /// setup_vmgexit_scratch(svm, in, bytes) and kvm_sev_es_string_io. True when an exit is set up.
    /// </summary>
    private bool GhcbStringIo(ulong info1, ulong info2)
    {
        bool input = (info1 & SvmIoioTypeMask) != 0;
        int size = (int)((info1 >> 4) & 7);
        ushort port = (ushort)(info1 >> 16);
        // Upstream divides PAGE_SIZE by the guest's size bits (kvm_sev_es_outs/ins: "min_t(unsigned int, PAGE_SIZE /
        // size, …)"); a size of 0 is not a state the emulator can reach the kernel's way: it fails the VMGEXIT
        // with -EINVAL like the other malformed string requests.
        if (info2 > int.MaxValue || (long)info2 * size > int.MaxValue || size == 0)
            return FailGhcbRun(Err.EINVAL);
        if (!SetupScratch(info2 * (ulong)size, out long errno))
            return errno == 0 ? false : FailGhcbRun(errno);
        _sevPioData = _ghcbScratch;
        _sevPioCount = (uint)info2;
        _sevPioSize = size;
        _sevPioPort = port;
        _sevPioIn = input;
        return SevEsPioLoop();
    }

    /// <summary>KVM_RUN fails with <paramref name="errno"/>; the GHCB is unmapped when the vCPU enters again.</summary>
    private bool FailGhcbRun(long errno)
    {
        _exit = new StepOutcome(true, errno);
        _vmgexitCompletion = VmgexitCompletion.GhcbUnmap;
        return true;
    }

    /// <summary>
    /// kvm_sev_es_outs / kvm_sev_es_ins: "for (;;) { count = min(PAGE_SIZE / size, sev_pio_count); … }" — batches the
    /// in-kernel devices take advance; the first one that goes to userspace exits (true). A count of 0 does nothing.
    /// </summary>
    private bool SevEsPioLoop()
    {
        while (_sevPioCount != 0)
        {
            int batch = (int)Math.Min((uint)(PioPageSize / _sevPioSize), _sevPioCount);
            if (!KernelStringPio(batch))
            {
                _sevPioBatch = batch;
                var data = _run.SetIoExit(output: !_sevPioIn, _sevPioSize, _sevPioPort, batch);
                // emulator_pio_in_out's userspace_io: "if (in) memset(vcpu->arch.pio_data, 0, size * count); else
                // memcpy(vcpu->arch.pio_data, data, size * count);"
                if (_sevPioIn) data.Clear();
                else HostGuestAccess(_sevPioData, data, write: false);
                return ExitWithGhcbMapped(VmgexitCompletion.GhcbStringIo);
            }
            AdvanceSevEsPio(batch);
        }
        return false;
    }

    /// <summary>
    /// emulator_pio_in_out's loop over kvm_io_bus_read/write of each element: false when the first element finds no
    /// device (→ userspace); a later one that finds none ends the batch ("Userspace must have unregistered the device
    /// while PIO was running. Drop writes / read as 0."). Only the sizes an IN/OUT has are offered to devices.
    /// </summary>
    private bool KernelStringPio(int batch)
    {
        if (_sevPioSize is not (1 or 2 or 4)) return false;
        Span<byte> element = stackalloc byte[4];
        var e = element[.._sevPioSize];
        for (int i = 0; i < batch; i++)
        {
            ulong at = _sevPioData + (ulong)(i * _sevPioSize);
            bool taken;
            if (_sevPioIn)
            {
                taken = _kvm.IoBus.Read(KvmMain.KvmBus.Pio, _vcpu, _sevPioPort, e);
                if (taken) HostGuestAccess(at, e, write: true);
            }
            else
            {
                e.Clear();
                HostGuestAccess(at, e, write: false);
                ulong v = 0;
                for (int b = 0; b < _sevPioSize; b++) v |= (ulong)e[b] << (8 * b);
                taken = _kvm.IoBus.Write(KvmMain.KvmBus.Pio, _vcpu, _sevPioPort, _sevPioSize, v);
            }
            if (taken) continue;
            if (i == 0) return false;
            if (_sevPioIn)
            {
                var zero = new byte[(batch - i) * _sevPioSize];
                HostGuestAccess(at, zero, write: true);
            }
            break;
        }
        return true;
    }

    /// <summary>advance_sev_es_emulated_pio: "sev_pio_count -= count; sev_pio_data += count * size;"</summary>
    private void AdvanceSevEsPio(int batch)
    {
        _sevPioCount -= (uint)batch;
        _sevPioData += (ulong)(batch * _sevPioSize);
    }

    /// <summary>
    /// complete_sev_es_emulated_ins ("complete_emulator_pio_in(vcpu, vcpu-&gt;arch.sev_pio_data)": userspace's bytes
    /// into the scratch area) / complete_sev_es_emulated_outs, then the next batch ("if (vcpu-&gt;arch.sev_pio_count)
    /// return kvm_sev_es_ins/outs(…)"). True when that batch exits again.
    /// </summary>
    private bool CompleteGhcbStringIo()
    {
        if (_sevPioIn)
        {
            var data = _run.IoData(_sevPioBatch * _sevPioSize).ToArray();
            HostGuestAccess(_sevPioData, data, write: true);
        }
        AdvanceSevEsPio(_sevPioBatch);
        bool again = SevEsPioLoop();
        _exit = StepOutcome.Continue; // outside an instruction: the exit is the KVM_RUN's, not the next Step's
        return again;
    }
}
