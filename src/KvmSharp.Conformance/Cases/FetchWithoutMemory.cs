// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// A guest that jumps to a guest-physical address no memory slot covers: the fetch is an MMIO access, which KVM's
/// instruction emulator cannot fetch from (arch/x86/kvm/emulate.c __do_insn_fetch_bytes → emulator_read_std fails
/// with X86EMUL_IO_NEEDED), so x86_emulate_instruction ends in handle_emulation_failure →
/// prepare_emulation_failure_exit: KVM_EXIT_INTERNAL_ERROR with suberror KVM_INTERNAL_ERROR_EMULATION (1), RIP at
/// the target. Ported from tests/KvmSharp.Emulation.Tests/ExitTests.cs, which checked it on the emulator only.
/// </summary>
public static class FetchWithoutMemory
{
    /// <summary>KVM_INTERNAL_ERROR_EMULATION (include/uapi/linux/kvm.h).</summary>
    private const uint InternalErrorEmulation = 1;

    [ConformanceCase("arch/x86/kvm/x86.c handle_emulation_failure: a 64-bit guest's fetch from a GPA without a memslot (mapped by its page tables) " +
                     "is KVM_EXIT_INTERNAL_ERROR, suberror KVM_INTERNAL_ERROR_EMULATION, RIP at the target; the next KVM_RUN fails the same way")]
    public static void long_mode_fetch_from_a_gpa_without_memory_is_an_emulation_failure(CaseContext ctx)
    {
        const ulong target = 0x40_0000;
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, a =>
        {
            a.mov(rax, target);
            a.jmp(rax);
        });
        guest.IdentityMap(target);
        for (int i = 0; i < 2; i++)
        {
            var exit = guest.Vcpu.Run();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_INTERNAL_ERROR, $"run {i}: expected KVM_EXIT_INTERNAL_ERROR, got {exit.ToString()}");
            Assert.Equal(InternalErrorEmulation, exit.InternalSuberror);
            Assert.Equal(target, guest.Vcpu.GetRegs().rip);
        }
    }

    [ConformanceCase("arch/x86/kvm/x86.c handle_emulation_failure: a real-mode far jump to a segment without a memslot is KVM_EXIT_INTERNAL_ERROR, " +
                     "suberror KVM_INTERNAL_ERROR_EMULATION, with CS and IP already the target's")]
    public static void real_mode_fetch_from_a_gpa_without_memory_is_an_emulation_failure(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a => a.jmp(0x5000, 0x10), backing: GuestMemoryBacking.HostMemory);
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_INTERNAL_ERROR, $"expected KVM_EXIT_INTERNAL_ERROR, got {exit.ToString()}");
        Assert.Equal(InternalErrorEmulation, exit.InternalSuberror);
        var sregs = guest.Vcpu.GetSregs();
        Assert.Equal(((ushort)0x5000, 0x5_0000UL, 0x10UL), (sregs.cs.selector, sregs.cs.@base, guest.Vcpu.GetRegs().rip));
    }
}
