// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// EmulatorConfig.X86DataBreakpoints (X86/Emulate/X86Emulator.GuestDebug.cs NoteDataAccess / DataBreakpointTrap): the
/// upstream x86 preset raises data breakpoints as VMX/SVM hardware does once KVM has loaded the debug registers — a
/// trap after the accessing instruction (Intel SDM Vol. 3A 18.2.4–18.2.5, 18.3.1.2), KVM_EXIT_DEBUG under
/// KVM_GUESTDBG_USE_HW_BP (svm.c db_interception, vmx.c handle_exception_nmi), else a #DB to the guest with the B bits in
/// DR6 (kvm_queue_exception_p → kvm_deliver_exception_payload). The like-this-host preset raises none, as Linux 6.18
/// kvm_pvm (conformance GuestDebug.host_breakpoint_kinds and ExtendedStateInstructions.code_breakpoint_raises_debug_exception
/// on /dev/kvm).
/// </summary>
public sealed class X86DataBreakpointTests
{
    private const ulong Code = LongModeGuest.CodeGpa, Data = 0x8_9000;
    private const ulong Active = 0xffff0ff0; // DR6_ACTIVE_LOW

    /// <summary>DR7 bits for breakpoint <paramref name="n"/>: L (or G), RW and LEN fields (LEN encoded 0/1/3/2 = 1/2/4/8).</summary>
    private static ulong Dr7(int n, int rw, int len, bool global = false)
    {
        ulong lenBits = len switch { 1 => 0, 2 => 1, 4 => 3, 8 => 2, _ => throw new ArgumentOutOfRangeException(nameof(len)) };
        return (1UL << (2 * n + (global ? 1 : 0))) | ((ulong)rw << (16 + 4 * n)) | (lenBits << (18 + 4 * n));
    }

    private static ulong Length(Action<Assembler> program) => (ulong)LongModeGuest.Assemble(program).Length;

    /// <summary>A guest running a program under KVM_GUESTDBG_USE_HW_BP with the host's DR0–DR3 and DR7 given.</summary>
    private sealed class HostDebugged : IDisposable
    {
        private readonly EmulatedKernel _kernel;
        private readonly Kvm _kvm;

        public HostDebugged(EmulatorConfig config, Action<Assembler> program, ulong dr7, params ulong[] db)
        {
            _kernel = new EmulatedKernel(config);
            _kvm = Kvm.Open(_kernel);
            Guest = LongModeGuest.Create(_kvm, program);
            Span<ulong> regs = stackalloc ulong[8];
            for (int n = 0; n < db.Length; n++) regs[n] = db[n];
            regs[7] = 0x400 | dr7;
            Guest.Vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, regs);
        }

        public LongModeGuest Guest { get; }

        public KvmSharp.Vcpu Vcpu => Guest.Vcpu;

        public void Dispose()
        {
            Guest.Dispose();
            _kvm.Dispose();
            _kernel.Dispose();
        }
    }

    private static void AssertDebugExit(VcpuExit exit, ulong pc, ulong dr6)
    {
        Assert.Equal(KvmExitReason.KVM_EXIT_DEBUG, exit.Reason);
        Assert.Equal(1u, exit.DebugException);
        Assert.Equal(pc, exit.DebugPc);
        Assert.Equal(dr6, exit.DebugDr6);
    }

    private static void Store(Assembler a)
    {
        a.mov(eax, 0x11223344);
        a.mov(__dword_ptr[Data], eax);
        a.mov(ebx, 0x55);
        a.hlt();
    }

    [Fact]
    public void The_switch_is_off_only_in_the_like_this_host_preset()
    {
        Assert.False(EmulatorConfig.LikeThisHost().X86DataBreakpoints);
        Assert.True(EmulatorConfig.X86_64().X86DataBreakpoints);
        Assert.True(new EmulatorConfig().X86DataBreakpoints);
    }

    [Fact]
    public void Like_this_host_raises_no_host_data_breakpoint()
    {
        using var g = new HostDebugged(EmulatorConfig.LikeThisHost(), Store, Dr7(0, rw: 1, len: 4), Data);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        Assert.Equal(0x55UL, g.Vcpu.GetRegs().rbx);
    }

    [Fact]
    public void Upstream_host_write_breakpoint_exits_after_the_write()
    {
        using var g = new HostDebugged(EmulatorConfig.X86_64(), Store, Dr7(0, rw: 1, len: 4), Data);
        ulong after = Code + Length(a => { a.mov(eax, 0x11223344); a.mov(__dword_ptr[Data], eax); });
        AssertDebugExit(g.Vcpu.RunBounded(), after, Active | 1);
        var regs = g.Vcpu.GetRegs();
        Assert.Equal(after, regs.rip); // a trap: the write is done, RIP past it
        Assert.Equal(0x11223344u, g.Guest.Memory.Read<uint>(Data));
        Assert.Equal(0UL, regs.rbx);
        // The next KVM_RUN goes on: no second hit without another access.
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        Assert.Equal(0x55UL, g.Vcpu.GetRegs().rbx);
    }

    [Fact]
    public void Write_breakpoint_ignores_reads_read_write_breakpoint_takes_them()
    {
        static void Load(Assembler a)
        {
            a.mov(eax, __dword_ptr[Data]);
            a.hlt();
        }
        using (var g = new HostDebugged(EmulatorConfig.X86_64(), Load, Dr7(0, rw: 1, len: 4), Data))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        }
        using (var g = new HostDebugged(EmulatorConfig.X86_64(), Load, Dr7(1, rw: 3, len: 4, global: true), 0, Data))
        {
            AssertDebugExit(g.Vcpu.RunBounded(), Code + Length(a => a.mov(eax, __dword_ptr[Data])), Active | 2);
        }
    }

    [Fact]
    public void Len_masks_the_low_address_bits_and_ranges_overlap_the_access()
    {
        // DR0 = Data + 5 with LEN 2 covers Data + 4 .. + 5 (SDM 18.2.5: the address is used as if aligned).
        static Action<Assembler> WordAt(ulong at) => a => { a.mov(__word_ptr[at], ax); a.hlt(); };
        using (var g = new HostDebugged(EmulatorConfig.X86_64(), WordAt(Data + 3), Dr7(0, rw: 1, len: 2), Data + 5))
        {
            AssertDebugExit(g.Vcpu.RunBounded(), Code + Length(a => a.mov(__word_ptr[Data + 3], ax)), Active | 1); // byte + 4
        }
        using (var g = new HostDebugged(EmulatorConfig.X86_64(), WordAt(Data + 6), Dr7(0, rw: 1, len: 2), Data + 5))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        }
        // LEN 8 at Data + 0x13 covers Data + 0x10 .. + 0x17.
        using (var g = new HostDebugged(EmulatorConfig.X86_64(), WordAt(Data + 0x10), Dr7(0, rw: 1, len: 8), Data + 0x13))
        {
            AssertDebugExit(g.Vcpu.RunBounded(), Code + Length(a => a.mov(__word_ptr[Data + 0x10], ax)), Active | 1);
        }
        using (var g = new HostDebugged(EmulatorConfig.X86_64(), WordAt(Data + 0x18), Dr7(0, rw: 1, len: 8), Data + 0x13))
        {
            Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        }
    }

    [Fact]
    public void Several_hits_in_one_instruction_set_several_b_bits_and_disabled_ones_none()
    {
        static void Qword(Assembler a)
        {
            a.mov(__qword_ptr[Data], rax);
            a.hlt();
        }
        // DR0 byte at Data (L0), DR1 at Data + 4 disabled (RW/LEN set, no L/G), DR2 dword at Data + 4 (G2), DR3 past it.
        ulong dr7 = Dr7(0, 1, 1) | (0xdUL << 20) | Dr7(2, 3, 4, global: true) | Dr7(3, 1, 8);
        using (var g = new HostDebugged(EmulatorConfig.X86_64(), Qword, dr7, Data, Data + 4, Data + 4, Data + 8))
        {
            AssertDebugExit(g.Vcpu.RunBounded(), Code + Length(a => a.mov(__qword_ptr[Data], rax)), Active | 0b0101);
        }
    }

    [Fact]
    public void Rep_string_traps_after_the_iteration_that_hit()
    {
        static void Fill(Assembler a)
        {
            a.mov(edi, (uint)Data);
            a.mov(ecx, 16);
            a.mov(al, 0xaa);
            a.rep.stosb();
            a.hlt();
        }
        ulong rep = Code + Length(a => { a.mov(edi, (uint)Data); a.mov(ecx, 16); a.mov(al, 0xaa); });
        using var g = new HostDebugged(EmulatorConfig.X86_64(), Fill, Dr7(0, rw: 1, len: 1), Data + 5);
        AssertDebugExit(g.Vcpu.RunBounded(), rep, Active | 1); // still on the REP STOSB: 6 of 16 bytes stored
        var regs = g.Vcpu.GetRegs();
        Assert.Equal((rep, 10UL, Data + 6), (regs.rip, regs.rcx, regs.rdi));
        Assert.Equal(0xaa, g.Guest.Memory.Read<byte>(Data + 5));
        Assert.Equal(0, g.Guest.Memory.Read<byte>(Data + 6));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason); // the rest runs on
        Assert.Equal(0UL, g.Vcpu.GetRegs().rcx);
    }

    /// <summary>The guest arms DR0 = Data, DR7 = <paramref name="dr7Value"/> itself, then stores (with <paramref name="rest"/>).</summary>
    private static void ArmAndStore(Assembler a, ulong dr7Value, bool rest)
    {
        a.mov(rax, (long)Data);
        a.mov(dr0, rax);
        a.mov(rax, (long)dr7Value);
        a.mov(dr7, rax);
        a.mov(eax, 0x11223344);
        a.mov(__dword_ptr[Data], eax);
        if (!rest) return;
        a.mov(ebx, 0x55);
        a.hlt();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_guests_own_write_breakpoint_is_a_debug_trap_in_the_upstream_preset_only(bool upstream)
    {
        var config = upstream ? EmulatorConfig.X86_64() : EmulatorConfig.LikeThisHost();
        using var kernel = new EmulatedKernel(config);
        using var kvm = Kvm.Open(kernel);
        ulong dr7 = 0x400 | Dr7(0, rw: 1, len: 4, global: true);
        using var g = IdtGuest.Create(kvm, a => ArmAndStore(a, dr7, rest: true), Enumerable.Range(0, 32).Select(v => new IdtVector(v)));
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        if (!upstream)
        {
            Assert.Empty(g.Deliveries);
            Assert.Equal(0x55UL, g.Vcpu.GetRegs().rbx);
            Assert.Equal(Active, g.Vcpu.GetDebugRegs().dr6);
            return;
        }
        var d = g.Single();
        Assert.Equal(1UL, d.Vector);
        Assert.Null(d.ErrorCode);
        Assert.Equal(Code + Length(a => ArmAndStore(a, dr7, rest: false)), d.Rip); // a trap: the frame's RIP is past the store
        Assert.Equal(0x11223344u, g.Guest.Memory.Read<uint>(Data));
        Assert.Equal(Active | 1, g.Vcpu.GetDebugRegs().dr6);
    }
}
