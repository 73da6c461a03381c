// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The emulator's KVM_CAP_ENFORCE_PV_FEATURE_CPUID beyond the MSRs (MicroVmPvMsrTests covers those on both kernels):
/// the vCPU KVM_ENABLE_CAP's EFAULT and the PV hypercalls, which guest_pv_has() gates too. Emulator only: kvm_pvm
/// restarts VMCALL forever (HostDeviations.KvmPvmHypercallLoops).
/// </summary>
public sealed class PvEnforcementTests
{
    private static long EnableCap(RawGuest g, uint cap, uint flags, ulong a0)
    {
        var c = new kvm_enable_cap { cap = cap, flags = flags };
        c.args[0] = a0;
        return g.Kernel.Ioctl(g.Vcpu, KvmIoctls.KVM_ENABLE_CAP, Raw.Bytes(ref c));
    }

    private static void Hypercalls(RawGuest g) => g.LongMode(a =>
    {
        a.mov(rax, KvmPara.KVM_HC_KICK_CPU);
        a.vmcall();
        a.mov(r8, rax);
        a.mov(rax, KvmPara.KVM_HC_SCHED_YIELD);
        a.vmcall();
        a.mov(r9, rax);
        a.mov(rax, KvmPara.KVM_HC_SEND_IPI);
        a.mov(rsi, 0x800);
        a.vmcall();
        a.mov(r10, rax);
        a.mov(rax, KvmPara.KVM_HC_VAPIC_POLL_IRQ);
        a.vmcall();
        a.hlt();
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Enforcement_without_a_table_turns_the_pv_hypercalls_into_enosys(bool enforce)
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        Hypercalls(g);
        Assert.Equal(0, EnableCap(g, KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 0, enforce ? 1UL : 0UL));
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        var r = g.Regs;
        ulong enosys = unchecked((ulong)-KvmPara.KVM_ENOSYS);
        // No table: pv_cpuid.features = 0, so every guest_pv_has() is false once enforced.
        Assert.Equal(enforce ? enosys : 0, r.r8);
        Assert.Equal(enforce ? enosys : 0, r.r9);
        Assert.Equal(enforce ? enosys : unchecked((ulong)-KvmPara.KVM_EINVAL), r.r10);
        Assert.Equal(0UL, r.rax); // VAPIC_POLL_IRQ is not a PV feature
    }

    [Fact]
    public void Enable_cap_copies_the_struct_in_first_and_checks_flags()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(g.Vcpu, KvmIoctls.KVM_ENABLE_CAP, 0UL));
        Assert.Equal(-(long)Errno.EINVAL, EnableCap(g, KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1, 1));
        Assert.Equal(-(long)Errno.EINVAL, EnableCap(g, KvmCaps.KVM_CAP_EXIT_HYPERCALL, 0, 0));
        Assert.Equal(0, EnableCap(g, KvmCaps.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 0, 2));
    }
}
