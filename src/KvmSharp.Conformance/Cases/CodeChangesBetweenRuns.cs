// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The bytes a vCPU executes are the bytes in guest memory now: what the host wrote into guest code between two
/// KVM_RUNs, what the guest wrote over its own next instruction (Intel SDM Vol. 3A 11.6 "Self-Modifying Code": a
/// write to a code byte about to be executed is seen), and what a memory slot recreated at the same GPA over other
/// host memory holds (virt/kvm/kvm_main.c kvm_set_memslot: KVM_MR_DELETE zaps the old translations). On the emulator
/// these depend on its decode and walk caches (X86Emulator.DecodeCache.cs, WalkReuse.cs); ported from
/// tests/KvmSharp.Emulation.Tests/InterpreterCacheTests.cs, which checked the emulator only.
/// </summary>
public static class CodeChangesBetweenRuns
{
    private const byte Port = 0x10;
    private const ulong SecondSlotGpa = 0x40_0000;

    [ConformanceCase("KVM_RUN: a host write into guest code between two runs is what the guest executes next (no stale decode)")]
    public static void a_host_write_to_guest_code_between_runs_is_executed(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.mov(al, 0x11);
            a.@out(Port, al);
            a.jmp(loop);
        });
        var first = guest.Vcpu.Run();
        Assert.True(first.Reason == KvmExitReason.KVM_EXIT_IO && first.IoIsOut, first.ToString());
        Assert.Equal(0x11, first.IoData[0]);
        // "mov al, imm8" is B0 ib at the start of the code: change the immediate.
        Assert.Equal(0xb0, guest.Memory.Read<byte>(LongModeGuest.CodeGpa));
        guest.Memory.Write<byte>(LongModeGuest.CodeGpa + 1, 0x22);
        var second = guest.Vcpu.Run();
        Assert.True(second.Reason == KvmExitReason.KVM_EXIT_IO && second.IoIsOut, second.ToString());
        Assert.Equal(0x22, second.IoData[0]);
    }

    [ConformanceCase("Intel SDM Vol. 3A 11.6: a guest store into the instruction it executes next is seen by the fetch (self-modifying code)")]
    public static void self_modifying_code_runs_the_bytes_it_just_wrote(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, a =>
        {
            var target = a.CreateLabel();
            a.lea(rbx, __[target]);
            a.mov(__byte_ptr[rbx + 1], 0x33);
            a.Label(ref target);
            a.mov(al, 0x11);
            a.@out(Port, al);
            a.hlt();
        });
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut, exit.ToString());
        Assert.Equal(0x33, exit.IoData[0]);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_set_memslot: code in a slot deleted and recreated at the same GPA over other host memory is fetched " +
                     "from the new memory (KVM_MR_DELETE zaps the old mappings)")]
    public static void code_in_a_recreated_slot_comes_from_the_new_memory(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = LongModeGuest.Create(kvm, a =>
        {
            a.mov(rax, SecondSlotGpa);
            a.jmp(rax);
        });
        guest.IdentityMap(SecondSlotGpa);
        ulong ps = (ulong)CaseContext.PageSize;
        using var first = guest.Vm.AllocateMemory(ps);
        using var second = guest.Vm.AllocateMemory(ps);
        first.Write(0, Report(0x44));
        second.Write(0, Report(0x55));
        var slot = guest.Vm.AddMemorySlot(1, SecondSlotGpa, first);
        var exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut, exit.ToString());
        Assert.Equal(0x44, exit.IoData[0]);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);

        slot.Dispose();
        using var again = guest.Vm.AddMemorySlot(1, SecondSlotGpa, second);
        guest.Vcpu.SetRegs(guest.Vcpu.GetRegs() with { rip = SecondSlotGpa });
        exit = guest.Vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut, exit.ToString());
        Assert.Equal(0x55, exit.IoData[0]);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, guest.Vcpu.Run().Reason);
    }

    /// <summary><c>mov al, value; out Port, al; hlt</c>, position independent.</summary>
    private static byte[] Report(byte value) => LongModeGuest.Assemble(a =>
    {
        a.mov(al, value);
        a.@out(Port, al);
        a.hlt();
    });
}
