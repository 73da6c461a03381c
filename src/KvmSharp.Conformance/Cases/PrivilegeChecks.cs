// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Privilege checks at CPL 3 in a 64-bit guest that starts in ring 3 (KVM_SET_SREGS with CS 0x33 / SS 0x2b, DPL 3):
/// the I/O permission of IN/OUT/INS/OUTS (IOPL, then the TSS I/O-permission bitmap: Intel SDM Vol. 1 19.5, AMD APM
/// Vol. 2 13.3; arch/x86/kvm/emulate.c emulator_io_permited), CLI/STI and POPFQ by IOPL (emulate.c em_cli, em_sti,
/// emulate_popf), and #GP(0) for the privileged instructions (emulate.c "Priv"; the SDM's "#GP(0) if CPL ≠ 0").
/// Each probe is one instruction at <see cref="LongModeGuest.CodeGpa"/> followed by UD2; #GP and #UD go through TSS.RSP0
/// to handlers that record the delivery and halt, so a fault shows as #GP(0) with RIP on the instruction and success
/// as #UD on the UD2 (and KVM_EXIT_IO before it, for port I/O).
/// </summary>
public static class PrivilegeChecks
{
    private const ushort UserData = 0x28 | 3, UserCode = 0x30 | 3;

    /// <summary>A user page (memory operands), the ring-3 stack below <see cref="UserStackTop"/>, TSS.RSP0.</summary>
    private const ulong Slots = 0x8_9000, UserStackTop = 0x8_B000, Rsp0 = 0x2_0000;

    /// <summary>A second TSS with an I/O permission bitmap (supervisor page).</summary>
    private const ulong BitmapTss = 0x8_C000, MapBase = 0x68;

    /// <summary>The bitmap: <see cref="Port"/> allowed, Port + 1 … + 7 denied, Port + 8 … + 15 allowed, the byte of Port + 16 … + 23 at the TSS limit (all allowed), Port + 24 beyond the limit.</summary>
    private const ushort Port = 0x110;
    private const uint BitmapTssLimit = (uint)MapBase + Port / 8 + 2;

    private const ulong IoplMask = 0x3000, Iopl3 = 0x3000, If = 0x200, Rf = 0x10000;
    private const ulong Cr4Tsd = 1UL << 2, Cr4Umip = 1UL << 11, Cr4OsXsave = 1UL << 18;

    private delegate void EditRegs(ref kvm_regs r);

    private readonly record struct Outcome(ulong Vector, ulong? ErrorCode, ulong Rip, ulong Rflags);

    /// <summary>
    /// A guest at CPL 3 whose code is <paramref name="instruction"/> then UD2, RFLAGS <paramref name="rflags"/>, the
    /// registers <paramref name="regs"/> sets, CR4 | <paramref name="cr4"/> (the supported CPUID set first) and, with
    /// <paramref name="bitmap"/>, TR on <see cref="BitmapTss"/>.
    /// </summary>
    private static IdtGuest Ring3(Kvm kvm, Action<Assembler> instruction, ulong rflags, bool bitmap = false, ulong cr4 = 0,
        EditRegs? regs = null, uint trLimit = BitmapTssLimit)
    {
        var g = IdtGuest.Create(kvm, a =>
        {
            instruction(a);
            a.ud2();
        }, [new IdtVector(6), new IdtVector(13)]);
        try
        {
            var (code, data) = g.PrepareRing3(UserCode, UserData, Rsp0, Slots, UserStackTop - 0x1000);
            g.Guest.Memory.Fill(Slots, Layout.PageSize, 0);
            // The guest's own TSS has no I/O bitmap: its map base (0 in fresh memory) past the limit.
            g.Guest.Memory.Write(Layout.Tss + Tss.IoMapBase, (ushort)(Tss.Limit + 1));
            g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
            var s = g.Vcpu.GetSregs();
            (s.cs, s.ss, s.ds, s.es) = (code, data, data, data);
            s.cr4 |= cr4;
            if (bitmap)
            {
                WriteBitmapTss(g);
                (s.tr.@base, s.tr.limit) = (BitmapTss, trLimit);
            }
            g.Vcpu.SetSregs(s);
            var r = g.Vcpu.GetRegs();
            (r.rip, r.rsp, r.rflags) = (LongModeGuest.CodeGpa, UserStackTop, rflags | 2);
            regs?.Invoke(ref r);
            g.Vcpu.SetRegs(r);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    private static void WriteBitmapTss(IdtGuest g)
    {
        var mem = g.Guest.Memory;
        mem.Fill(BitmapTss, Layout.PageSize, 0xff);
        mem.Write(BitmapTss, 0u);
        mem.Write(BitmapTss + 4, Rsp0);
        mem.Write(BitmapTss + 102, (ushort)MapBase);
        ulong at = BitmapTss + MapBase + Port / 8;
        mem.Write(at, (byte)0xFE);
        mem.Write(at + 1, (byte)0x00);
        mem.Write(at + 2, (byte)0x00);
        mem.Write(at + 3, (byte)0x00); // beyond the limit: allowed bits the limit hides
    }

    /// <summary>The length of the instruction at <see cref="LongModeGuest.CodeGpa"/>.</summary>
    private static ulong FirstLength(IdtGuest g)
    {
        var code = new byte[16];
        g.Guest.Memory.Read(LongModeGuest.CodeGpa, code);
        return (ulong)Decoder.Create(64, code).Decode().Length;
    }

    /// <summary>Runs to the handler's HLT, answering and recording KVM_EXIT_IO on the way (IN data 0x5A…).</summary>
    private static (Outcome Outcome, List<(bool Out, int Size, ushort Port)> Io) RunToHandler(IdtGuest g)
    {
        var io = new List<(bool, int, ushort)>();
        for (int n = 0; n < 8; n++)
        {
            var exit = g.Vcpu.Run();
            if (exit.Reason == KvmExitReason.KVM_EXIT_IO)
            {
                io.Add((exit.IoIsOut, exit.IoSize, exit.IoPort));
                if (!exit.IoIsOut) exit.IoData.Fill(0x5A);
                continue;
            }
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{exit.ToString()} at RIP 0x{g.Vcpu.GetRegs().rip:X}");
            var d = g.Single();
            return (new Outcome(d.Vector, d.ErrorCode, d.Rip, d.Rflags), io);
        }
        throw new Xunit.Sdk.XunitException("the guest kept exiting");
    }

    private static void ExpectGp(IdtGuest g, string what)
    {
        var (o, io) = RunToHandler(g);
        Assert.True(io.Count == 0 && o.Vector == 13 && o.ErrorCode == 0 && o.Rip == LongModeGuest.CodeGpa,
            $"{what}: expected #GP(0) on the instruction, got {o} after {io.Count} I/O exits");
    }

    private static Outcome ExpectDone(IdtGuest g, string what, params (bool Out, int Size, ushort Port)[] io)
    {
        ulong ud2 = LongModeGuest.CodeGpa + FirstLength(g);
        var (o, seen) = RunToHandler(g);
        Assert.True(o.Vector == 6 && o.Rip == ud2 && seen.SequenceEqual(io),
            $"{what}: expected [{string.Join(", ", io)}] then #UD at 0x{ud2:X}, got {o} after [{string.Join(", ", seen)}]");
        return o;
    }

    [ConformanceCase("emulate.c emulator_io_permited / emulator_bad_iopl (SDM Vol. 1 19.5.1): at CPL 3 with IOPL 0 and a TSS without an I/O bitmap (map base = limit + 1), OUT, IN, OUTSB, INSB and REP INSB with RCX 0 are #GP(0) with RIP on the instruction and no exit")]
    public static void port_io_at_cpl_3_without_iopl_or_bitmap_is_gp(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var probes = new (string Name, Action<Assembler> Insn, ulong Rcx)[]
        {
            ("out dx, al", a => a.@out(dx, al), 0),
            ("out imm8, al", a => a.@out(0x80, al), 0),
            ("in al, dx", a => a.@in(al, dx), 0),
            ("outsb", a => a.outsb(), 0),
            ("insb", a => a.insb(), 0),
            ("rep insb, rcx 0", a => a.rep.insb(), 0),
        };
        foreach (var (name, insn, rcx) in probes)
        {
            using var g = Ring3(kvm, insn, If, regs: (ref kvm_regs r) => { r.rdx = Port; (r.rsi, r.rdi, r.rcx) = (Slots, Slots, rcx); });
            ExpectGp(g, name);
        }
    }

    [ConformanceCase("emulate.c emulator_bad_iopl: at CPL 3 with IOPL 3 the bitmap is not consulted — OUT, IN, OUTSB and INSB exit with KVM_EXIT_IO (the INSB stores the byte at ES:RDI)")]
    public static void port_io_at_cpl_3_with_iopl_3_exits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var probes = new (string Name, Action<Assembler> Insn, bool Out)[]
        {
            ("out dx, al", a => a.@out(dx, al), true),
            ("in al, dx", a => a.@in(al, dx), false),
            ("outsb", a => a.outsb(), true),
            ("insb", a => a.insb(), false),
        };
        foreach (var (name, insn, isOut) in probes)
        {
            using var g = Ring3(kvm, insn, Iopl3 | If, regs: (ref kvm_regs r) => { r.rdx = Port; (r.rsi, r.rdi) = (Slots, Slots + 8); });
            if (HostDeviations.KvmPvmUserModeIoplIsZero(ctx.Target.IsReal))
            {
                ExpectGp(g, $"{name} (IOPL 0 at CPL 3 on kvm_pvm)");
                continue;
            }
            var o = ExpectDone(g, name, (isOut, 1, Port));
            Assert.Equal(Iopl3, o.Rflags & IoplMask);
            if (name == "insb") Assert.Equal(0x5A, g.Guest.Memory.Read<byte>(Slots + 8));
        }
    }

    [ConformanceCase("emulate.c emulator_io_port_access_allowed (SDM Vol. 1 19.5.2, AMD APM Vol. 2 13.3.2): at CPL 3 > IOPL the TSS's bitmap decides — every bit of port … port + size − 1 must be 0 (the two bytes at map base + port / 8; a word spanning two bitmap bytes), a port whose byte lies beyond the TSS limit is refused; refused → #GP(0), allowed → KVM_EXIT_IO; OUTS/INS likewise")]
    public static void port_io_at_cpl_3_follows_the_tss_io_bitmap(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var probes = new (string Name, Action<Assembler> Insn, ushort Port, int Size, bool Out, bool Allowed)[]
        {
            ("out byte to P", a => a.@out(dx, al), Port, 1, true, true),
            ("in byte from P", a => a.@in(al, dx), Port, 1, false, true),
            ("out word to P (P + 1 denied)", a => a.@out(dx, ax), Port, 2, true, false),
            ("out byte to P + 1", a => a.@out(dx, al), Port + 1, 1, true, false),
            ("out byte to P + 7", a => a.@out(dx, al), Port + 7, 1, true, false),
            ("out dword to P + 8", a => a.@out(dx, eax), Port + 8, 4, true, true),
            ("in dword from P + 12", a => a.@in(eax, dx), Port + 12, 4, false, true),
            ("out word to P + 15 (two bitmap bytes)", a => a.@out(dx, ax), Port + 15, 2, true, true),
            ("out word to P + 7 (two bitmap bytes, first denied)", a => a.@out(dx, ax), Port + 7, 2, true, false),
            ("out byte to P + 16 (its bitmap byte at the TSS limit)", a => a.@out(dx, al), Port + 16, 1, true, true),
            ("out byte to P + 24 (beyond the limit)", a => a.@out(dx, al), Port + 24, 1, true, false),
            ("out byte to 0xFFFF (beyond the limit)", a => a.@out(dx, al), 0xFFFF, 1, true, false),
            ("outsb to P", a => a.outsb(), Port, 1, true, true),
            ("outsw to P", a => a.outsw(), Port, 2, true, false),
            ("insb from P", a => a.insb(), Port, 1, false, true),
            ("insb from P + 1", a => a.insb(), Port + 1, 1, false, false),
            ("insd from P + 8", a => a.insd(), Port + 8, 4, false, true),
        };
        foreach (var (name, insn, port, size, isOut, allowed) in probes)
        {
            using var g = Ring3(kvm, insn, If, bitmap: true, regs: (ref kvm_regs r) => { r.rdx = port; (r.rsi, r.rdi) = (Slots, Slots + 8); });
            if (allowed) ExpectDone(g, name, (isOut, size, port));
            else ExpectGp(g, name);
        }
    }

    [ConformanceCase("emulate.c emulator_io_port_access_allowed: \"if (desc_limit_scaled(&tr_seg) < 103) return false\" — a TR limit of 102 (no room for the map base) refuses even a port the bitmap allows, and a map base beyond the limit refuses every port: #GP(0) at CPL 3 > IOPL")]
    public static void port_io_at_cpl_3_needs_a_tss_that_holds_the_map(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var g = Ring3(kvm, a => a.@out(dx, al), If, bitmap: true, trLimit: 102, regs: (ref kvm_regs r) => r.rdx = Port))
            ExpectGp(g, "out to P with TR limit 102");
        using (var g = Ring3(kvm, a => a.@out(dx, al), If, bitmap: true, trLimit: 103, regs: (ref kvm_regs r) => r.rdx = Port))
            ExpectGp(g, "out to P with TR limit 103 (map base 0x68 + 0x22 beyond it)");
        using var ok = Ring3(kvm, a => a.@out(dx, al), If, bitmap: true, regs: (ref kvm_regs r) => r.rdx = Port);
        ExpectDone(ok, "out to P with the bitmap in the limit", (true, 1, Port));
    }

    [ConformanceCase("emulate.c em_cli / em_sti: at CPL 3 > IOPL, CLI and STI are #GP(0) and leave IF; at CPL 3 with IOPL 3 they clear and set IF")]
    public static void cli_and_sti_at_cpl_3_follow_iopl(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (name, insn, startIf) in new (string, Action<Assembler>, ulong)[] { ("cli", a => a.cli(), If), ("sti", a => a.sti(), 0) })
        {
            using (var g = Ring3(kvm, insn, startIf))
            {
                ExpectGp(g, $"{name} with IOPL 0");
                Assert.Equal(startIf, g.Single().Rflags & If);
            }
            using var ok = Ring3(kvm, insn, Iopl3 | startIf);
            if (HostDeviations.KvmPvmUserModeIoplIsZero(ctx.Target.IsReal))
            {
                ExpectGp(ok, $"{name} with IOPL 3 (IOPL 0 at CPL 3 on kvm_pvm)");
                continue;
            }
            var o = ExpectDone(ok, $"{name} with IOPL 3");
            Assert.Equal((If ^ startIf) | Iopl3, o.Rflags & (If | IoplMask));
        }
    }

    [ConformanceCase("emulate.c emulate_popf (SDM Vol. 2B POPF): at CPL 3 POPFQ changes CF PF AF ZF SF TF DF OF NT AC but never IOPL, and IF only when CPL ≤ IOPL — no fault either way")]
    public static void popfq_at_cpl_3_keeps_iopl_and_changes_if_only_with_iopl_3(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // Pushed image: IOPL 1, IF clear, CF PF AF ZF SF DF OF NT AC set (TF left clear: it would trap the UD2).
        const ulong Pushed = 0x4_5CD5 | 0x1000, Arith = 0x4_4CD5;
        foreach (ulong iopl in new[] { 0UL, Iopl3 })
        {
            using var g = Ring3(kvm, a =>
            {
                a.push((int)Pushed);
                a.popfq();
            }, iopl | If);
            // The UD2 follows PUSH imm32 (5 bytes) and POPFQ (1 byte).
            var (o, io) = RunToHandler(g);
            Assert.True(io.Count == 0 && o.Vector == 6 && o.Rip == LongModeGuest.CodeGpa + 6, $"IOPL {iopl >> 12}: {o}");
            bool ioplKept = iopl == Iopl3 && !HostDeviations.KvmPvmUserModeIoplIsZero(ctx.Target.IsReal);
            Assert.Equal(Arith | (ioplKept ? Iopl3 : 0) | (ioplKept ? 0 : If) | 2, o.Rflags & ~Rf);
        }
    }

    [ConformanceCase("emulate.c emulate_popf (SDM Vol. 2B POPF): at CPL 0 POPFQ changes IF and IOPL as well as CF PF AF ZF SF DF OF NT AC; a 16-bit POPF changes only FLAGS[15:0] (AC kept)")]
    public static void popf_at_cpl_0_changes_if_and_iopl(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Pushed = 0x5_7ED7 & ~0x100UL, Arith = 0x4_4CD5;
        using (var g = IdtGuest.Create(kvm, a =>
        {
            a.push((int)Pushed);
            a.popfq();
            a.ud2();
        }, [new IdtVector(6), new IdtVector(13)]))
        {
            var r = g.Vcpu.GetRegs();
            r.rflags = 2;
            g.Vcpu.SetRegs(r);
            var (o, io) = RunToHandler(g);
            Assert.True(io.Count == 0 && o.Vector == 6 && o.Rip == LongModeGuest.CodeGpa + 6, o.ToString());
            Assert.Equal(Arith | Iopl3 | If | 2, o.Rflags & ~Rf);
        }
        using var w = IdtGuest.Create(kvm, a =>
        {
            a.push((short)0x0ED7);
            a.popf();
            a.ud2();
        }, [new IdtVector(6), new IdtVector(13)]);
        var regs = w.Vcpu.GetRegs();
        regs.rflags = 0x4_0002;
        w.Vcpu.SetRegs(regs);
        var (wo, _) = RunToHandler(w);
        Assert.True(wo.Vector == 6, wo.ToString());
        Assert.Equal(0x4_0ED7UL, wo.Rflags & ~Rf);
    }

    [ConformanceCase("SDM Vol. 2A IRET (RFLAGS by the old CPL; emulate.c emulate_popf's rule): an IRETQ at CPL 3 to CPL 3 leaves IOPL, and leaves IF when CPL > IOPL, while CF … AC come from the frame")]
    public static void iretq_at_cpl_3_keeps_iopl_and_if(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        const ulong Frame = 0x4_3CD5, Arith = 0x4_0CD5; // IOPL 3, IF clear, AC and arithmetic flags
        using var g = Ring3(kvm, a =>
        {
            var target = a.CreateLabel();
            a.mov(rax, rsp);
            a.push((int)UserData);
            a.push(rax);
            a.push((int)Frame);
            a.push((int)UserCode);
            a.lea(rax, __[target]);
            a.push(rax);
            a.iretq();
            a.Label(ref target);
        }, If);
        var (o, io) = RunToHandler(g);
        Assert.True(io.Count == 0 && o.Vector == 6, o.ToString());
        Assert.Equal(Arith | If | 2, o.Rflags & ~Rf);
    }

    /// <summary>One privileged instruction and the CR4 bits it needs to be privileged (or to get past an earlier #UD).</summary>
    private readonly record struct Privileged(string Name, Action<Assembler> Insn, ulong Cr4 = 0);

    private static Privileged[] PrivilegedTable =>
    [
        new("mov cr0, rax", a => a.mov(cr0, rax)),
        new("mov rax, cr0", a => a.mov(rax, cr0)),
        new("mov rax, cr3", a => a.mov(rax, cr3)),
        new("mov cr4, rax", a => a.mov(cr4, rax)),
        new("mov cr8, rax", a => a.mov(cr8, rax)),
        new("mov rax, dr7", a => a.mov(rax, dr7)),
        new("mov dr0, rax", a => a.mov(dr0, rax)),
        new("lgdt", a => a.lgdt(__[Slots])),
        new("lidt", a => a.lidt(__[Slots])),
        new("ltr", a => a.ltr(ax)),
        new("lldt", a => a.lldt(ax)),
        new("lmsw", a => a.lmsw(ax)),
        new("clts", a => a.clts()),
        new("invlpg", a => a.invlpg(__byte_ptr[Slots])),
        new("wbinvd", a => a.wbinvd()),
        new("invd", a => a.invd()),
        new("hlt", a => a.hlt()),
        new("rdmsr", a => a.rdmsr()),
        new("wrmsr", a => a.wrmsr()),
        new("swapgs", a => a.swapgs()),
        new("rdpmc without CR4.PCE", a => a.rdpmc()),
        new("rdtsc with CR4.TSD", a => a.rdtsc(), Cr4Tsd),
        new("xsetbv", a => a.xsetbv(), Cr4OsXsave),
        new("sgdt with CR4.UMIP", a => a.sgdt(__[Slots]), Cr4Umip),
        new("sidt with CR4.UMIP", a => a.sidt(__[Slots]), Cr4Umip),
        new("str with CR4.UMIP", a => a.str(ax), Cr4Umip),
        new("sldt with CR4.UMIP", a => a.sldt(ax), Cr4Umip),
        new("smsw with CR4.UMIP", a => a.smsw(ax), Cr4Umip),
    ];

    [ConformanceCase("emulate.c x86_emulate_insn \"Priv\" → emulate_gp(ctxt, 0) (SDM Vol. 2: \"#GP(0) If the current privilege level is not 0\"): at CPL 3 (IOPL 3) MOV to/from CR0/CR3/CR4/CR8 and DRn, LGDT, LIDT, LTR, LLDT, LMSW, CLTS, INVLPG, WBINVD, INVD, HLT, RDMSR, WRMSR, SWAPGS and XSETBV are #GP(0) with RIP on the instruction; RDPMC without CR4.PCE, RDTSC with CR4.TSD, and SGDT/SIDT/STR/SLDT/SMSW with CR4.UMIP too")]
    public static void privileged_instructions_at_cpl_3_are_gp(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var failures = new List<string>();
        foreach (var p in PrivilegedTable)
        {
            using var g = Ring3(kvm, p.Insn, Iopl3, cr4: p.Cr4, regs: (ref kvm_regs r) => (r.rax, r.rcx, r.rdx) = (0UL, 0UL, 0UL));
            var (o, io) = RunToHandler(g);
            if (p.Cr4 == Cr4Tsd && HostDeviations.KvmPvmIgnoresCr4TsdAtCpl3(ctx.Target.IsReal))
            {
                if (o.Vector != 6) failures.Add($"{p.Name} (runs on kvm_pvm): {o}");
                continue;
            }
            if (io.Count != 0 || o.Vector != 13 || o.ErrorCode != 0 || o.Rip != LongModeGuest.CodeGpa) failures.Add($"{p.Name}: {o}");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    [ConformanceCase("SDM Vol. 2B RDTSC / SGDT / SMSW: at CPL 3 without CR4.TSD RDTSC runs, and without CR4.UMIP SGDT, SIDT and SMSW run (they are privileged only with those bits)")]
    public static void tsd_and_umip_instructions_run_at_cpl_3_without_the_cr4_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (var (name, insn) in new (string, Action<Assembler>)[]
        {
            ("rdtsc", a => a.rdtsc()),
            ("sgdt", a => a.sgdt(__[Slots])),
            ("sidt", a => a.sidt(__[Slots])),
            ("smsw", a => a.smsw(ax)),
        })
        {
            using var g = Ring3(kvm, insn, 0);
            ExpectDone(g, name);
        }
    }
}
