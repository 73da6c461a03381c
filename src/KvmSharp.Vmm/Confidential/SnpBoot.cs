// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Confidential;

/// <summary>
/// The SEV-SNP launch of a <see cref="VmType.Snp"/> micro-VM (Documentation/virt/kvm/x86/amd-memory-encryption.rst):
/// KVM_SEV_INIT2 before the vCPU exists (<see cref="Open"/>); at the first call, once its registers and stack are
/// written, the private ranges (<see cref="SealedGuest.PrivateRanges"/>) are made private on the guest_memfd
/// (KVM_SET_MEMORY_ATTRIBUTES2), SNP_LAUNCH_START, SNP_LAUNCH_UPDATE of each private range in place (source 0: the
/// contents the host wrote through the mapping stay; allowed with in-place conversion by "guest_memfd: In-place
/// conversion support" v8, sev.c sev_gmem_post_populate), and SNP_LAUNCH_FINISH, which seals the vCPU's registers
/// into its VMSA (x86.c: KVM_GET/SET_REGS and _SREGS answer EINVAL once guest_state_protected).
/// </summary>
internal sealed class SnpBoot : ISealedLaunch
{
    private SnpLaunch? _launch;

    private SnpBoot(SnpLaunch launch, ulong cbit)
    {
        _launch = launch;
        Cbit = cbit;
    }

    /// <summary>The C-bit mask the page tables and CR3 use (bit <c>CPUID 0x8000001F EBX[5:0]</c>).</summary>
    public ulong Cbit { get; }

    /// <summary>True once SNP_LAUNCH_FINISH ran: the vCPU registers are sealed.</summary>
    public bool Launched { get; private set; }

    /// <inheritdoc/>
    public VmType Type => VmType.Snp;

    /// <inheritdoc/>
    public string SealedBy => "SNP_LAUNCH_FINISH";

    /// <inheritdoc/>
    public bool SetsEntryRegisters => true;

    /// <summary>
    /// Opens /dev/sev and issues KVM_SEV_INIT2 on <paramref name="vm"/> (before any vCPU). The C-bit position is the
    /// kernel's CPUID 0x8000001F EBX[5:0] (cpuid.c __do_cpuid_func passes the leaf through for an SEV host; QEMU's
    /// sev "cbitpos"); a kernel without the leaf cannot give the vCPU a C-bit CR3 (svm.c svm_vcpu_after_set_cpuid).
    /// </summary>
    public static SnpBoot Open(Vm vm, MicroVmOptions options)
    {
        if (options.Cpuid == CpuidPolicy.None)
        {
            throw new MicroVmException(
                "VM type Snp with CpuidPolicy.None: an SNP micro-VM's vCPU needs CPUID leaf 0x8000001F (the C-bit position " +
                "its page tables and CR3 use; svm.c svm_vcpu_after_set_cpuid spares that bit of CR3 only then)");
        }
        if (options.TraceInstructions > 0) throw new MicroVmException(SealedGuest.TraceRefusal(VmType.Snp, "SNP_LAUNCH_FINISH"));
        int? position = GuestCpuid.CbitPosition(vm.Kvm);
        if (position is not int bit)
        {
            throw new MicroVmException(
                "VM type Snp: KVM_GET_SUPPORTED_CPUID has no leaf 0x8000001F with a C-bit position, so the micro-VM cannot " +
                "mark its private pages");
        }
        SnpLaunch launch = SnpLaunch.Open(vm);
        try
        {
            launch.Init();
            return new SnpBoot(launch, 1UL << bit);
        }
        catch
        {
            launch.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Makes the private ranges private and launches them in place, then SNP_LAUNCH_FINISH; closes /dev/sev.
    /// </summary>
    public void Launch(GuestMemory memory, Vcpu vcpu)
    {
        SnpLaunch launch = _launch ?? throw new InvalidOperationException("the SNP micro-VM is launched already");
        GuestMemfd memfd = memory.Memfd!;
        foreach (var (start, end) in SealedGuest.PrivateRanges(memory.Size, VmType.Snp)) memfd.MakePrivate(start, end - start);
        launch.Start();
        foreach (var (start, end) in SealedGuest.PrivateRanges(memory.Size, VmType.Snp))
            launch.Update(start / Layout.PageSize, source: 0, end - start);
        launch.Finish();
        Launched = true;
        _launch = null;
        launch.Dispose();
    }

    /// <summary>Closes /dev/sev if the launch did not already.</summary>
    public void Dispose()
    {
        _launch?.Dispose();
        _launch = null;
    }
}
