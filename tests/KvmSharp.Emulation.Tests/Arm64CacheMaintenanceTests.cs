// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Cache maintenance by VA and DC ZVA in the A64 interpreter (Emulation/Arm64/A64Interpreter.CacheMaintenance.cs):
/// the Arm ARM's sequence for modified code (B2.4.4: DC CVAU, DSB ISH, IC IVAU, DSB ISH, ISB) runs and the new code
/// executes; a by-VA operation on an unmapped VA takes a Data Abort with ESR.CM = 1 and WnR = 1 (Arm ARM "ISS
/// encoding for an exception from a Data Abort"); at EL0 without SCTLR_EL1.UCI / DZE it traps to EL1 with EC 0x18
/// (AArch64.SystemAccessTrap); on an IPA outside every memslot KVM skips it (mmu.c kvm_handle_guest_abort:
/// "kvm_is_error_hva(hva) &amp;&amp; kvm_vcpu_dabt_is_cm(vcpu)" → kvm_incr_pc), no MMIO exit. Emulator only: the real
/// kernel here is x86; the oracle is the Arm ARM and the kernel source, cited per assertion.
/// </summary>
public sealed class Arm64CacheMaintenanceTests
{
    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000, Data = 0x9000, Fn = 0xA000;

    /// <summary>A VA no table maps: L1[1] is invalid (a level-1 translation fault, DFSC 0b000101).</summary>
    private const ulong Unmapped = 0x4000_0000;

    /// <summary>An IPA inside the VM's IPA space but outside every memslot.</summary>
    private const ulong NoSlot = 0x8000_0000;

    private const ulong Il = 1UL << 25, Cm = 1UL << 8, WnR = 1UL << 6;
    private const ulong NoFault = 0xDEAD;

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Sctlr = Enc(0, 1, 0, 0), Esr = Enc(0, 5, 2, 0), Far = Enc(0, 6, 0, 0), Elr = Enc(0, 4, 0, 1),
        Spsr = Enc(0, 4, 0, 0), Dczid = Enc(3, 0, 0, 7);

    // T0SZ 16, TG0 4K, EPD1 (no TTBR1 walks), IPS 0b010 (40 bits).
    private const ulong TcrValue = 16 | (1UL << 23) | (2UL << 30) | (2UL << 32);

    // Arm ARM C6.2: ISB, DSB ISH; SYS #3, C7, Cm, #1, Xt (op1 3, CRn 7, op2 1) for the EL0-accessible by-VA forms.
    private const uint Isb = 0xD503_3FDF, DsbIsh = 0xD503_3B9F;

    private static uint Sys3(int crm, int rt) => 0xD50B_7020u | ((uint)crm << 8) | (uint)rt;

    private static uint IcIvau(int rt) => Sys3(5, rt);

    private static uint DcCvau(int rt) => Sys3(11, rt);

    private static uint DcCivac(int rt) => Sys3(14, rt);

    private static uint DcZva(int rt) => Sys3(4, rt);

    private static ulong DataAbortCur(ulong iss) => (0x25UL << 26) | Il | iss;

    /// <summary>EC 0x18 ISS for SYS #3, C7, Cm, #1, Xt: Op0 1, Op2 1, Op1 3, CRn 7, Rt, CRm, Direction 0.</summary>
    private static ulong SysTrap(int crm, int rt) =>
        (0x18UL << 26) | Il | (1UL << 20) | (1UL << 17) | (3UL << 14) | (7UL << 10) | ((ulong)rt << 5) | ((ulong)crm << 1);

    /// <summary>VA of a read-only alias of IPA 0: L2[1], AP[2] set.</summary>
    private const ulong ReadOnlyAlias = 0x20_0000;

    /// <summary>L0[0] → L1[0] → L2: L2[0] Normal over IPA 0, L2[1] its read-only alias, L2[8] the ucall block.</summary>
    private static void BuildTables(Arm64TestVm s)
    {
        static ulong Block(ulong oa) => oa | 1 | (1UL << 10);
        s.Host.Write(L0, BitConverter.GetBytes(L1 | 3));
        s.Host.Write(L1, BitConverter.GetBytes(L2 | 3));
        s.Host.Write(L2, BitConverter.GetBytes(Block(0)));
        s.Host.Write(L2 + 8, BitConverter.GetBytes(Block(0) | (1UL << 7)));
        s.Host.Write(L2 + 64, BitConverter.GetBytes(Block(Arm64Guest.UcallMmioGpa)));
    }

    private static void MmuOn(A64Assembler a)
    {
        Arm64MmuSetup.Emit(a, TcrValue, L0);
    }

    /// <summary>x24 = the address after the next instruction (where a vector resumes), x20 = NoFault; the instruction.</summary>
    private static void Faulting(A64Assembler a, uint insn)
    {
        a.MovImm(X(20), NoFault);
        ulong resume = Arm64Guest.CodeGpa + (ulong)a.Position + 12;
        a.Movz(X(24), (ushort)resume);
        a.Movk(X(24), (ushort)(resume >> 16), 16);
        a.Emit(insn);
    }

    /// <summary>
    /// Runs to the ucall (the first exit must be it); the synchronous vectors from EL1h (0x200) and from EL0 (0x400)
    /// record ESR/FAR/ELR in x20/x21/x22 and resume at x24.
    /// </summary>
    private static (Arm64TestVm Vm, KvmSharp.Vcpu Vcpu) Run(Action<A64Assembler> program, Action<Arm64TestVm>? setUp = null)
    {
        var s = new Arm64TestVm(program);
        BuildTables(s);
        setUp?.Invoke(s);
        byte[] vector = Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(20), Esr);
            a.Mrs(X(21), Far);
            a.Mrs(X(22), Elr);
            a.Msr(Elr, X(24));
            a.Eret();
        });
        s.Host.Write(0x200, vector);
        s.Host.Write(0x400, vector);
        var vcpu = s.AddVcpu();
        var exit = vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(1UL, BitConverter.ToUInt64(exit.MmioData));
        return (s, vcpu);
    }

    private static ulong Reg(KvmSharp.Vcpu v, int n) => v.GetOneReg(KvmArm64Regs.X(n));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Code_written_by_the_guest_runs_after_dc_cvau_dsb_ic_ivau_dsb_isb(bool mmu)
    {
        uint movz1 = BitConverter.ToUInt32(Arm64Guest.Assemble(a => a.Movz(X(7), 1)));
        uint movz2 = BitConverter.ToUInt32(Arm64Guest.Assemble(a => a.Movz(X(7), 2)));
        var (s, v) = Run(a =>
        {
            if (mmu) MmuOn(a);
            a.MovImm(X(20), NoFault);
            a.MovImm(X(5), Fn);
            a.Blr(X(5)); // the old code, fetched once
            a.Mov(X(16), X(7));
            a.MovImm(X(3), movz2);
            a.Str(W(3), X(5));
            a.MovImm(X(6), Fn + 0x3C); // an unaligned address in the same 64-byte line
            a.Emit(DcCvau(6));
            a.Emit(DsbIsh);
            a.Emit(IcIvau(5));
            a.Emit(DsbIsh);
            a.Emit(Isb);
            a.Blr(X(5));
            a.Mov(X(11), X(7));
            Arm64Guest.Ucall(a, 1);
        }, t => t.Host.Write(Fn, [.. BitConverter.GetBytes(movz1), .. Arm64Guest.Assemble(a => a.Ret())]));
        using (s)
        {
            Assert.Equal(movz2, s.Host.Read<uint>(Fn));
            Assert.Equal(NoFault, Reg(v, 20));
            Assert.Equal(1UL, Reg(v, 16));
            Assert.Equal(2UL, Reg(v, 11));
        }
    }

    [Fact]
    public void By_va_maintenance_on_an_unmapped_va_is_a_data_abort_with_cm_and_wnr()
    {
        var (s, v) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), Unmapped + 0x48);
            Faulting(a, DcCivac(1));
            a.Mov(X(11), X(20));
            a.Mov(X(12), X(21));
            Faulting(a, IcIvau(1));
            a.Mov(X(13), X(20));
            a.Mov(X(14), X(21));
            a.MovImm(X(1), Data + 0x48);
            Faulting(a, DcCivac(1)); // mapped: no fault
            a.Mov(X(15), X(20));
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            // DFSC 0b000101: a level-1 translation fault; CM and WnR set for cache maintenance.
            Assert.Equal(DataAbortCur(0x05 | Cm | WnR), Reg(v, 11));
            Assert.Equal(Unmapped + 0x48, Reg(v, 12));
            Assert.Equal(DataAbortCur(0x05 | Cm | WnR), Reg(v, 13));
            Assert.Equal(Unmapped + 0x48, Reg(v, 14));
            Assert.Equal(NoFault, Reg(v, 15));
        }
    }

    [Fact]
    public void Dc_ivac_at_el1_is_a_clean_and_invalidate_and_takes_no_permission_fault_on_a_read_only_page()
    {
        var (s, v) = Run(a =>
        {
            MmuOn(a);
            a.MovImm(X(1), ReadOnlyAlias + Data);
            Faulting(a, 0xD508_7621); // DC IVAC, X1 (SYS #0, C7, C6, #1)
            a.Mov(X(11), X(20));
            Faulting(a, DcCivac(1));
            a.Mov(X(12), X(20));
            a.MovImm(X(1), Unmapped);
            Faulting(a, 0xD508_7621);
            a.Mov(X(13), X(20));
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            // DC IVAC pseudocode: "elsif EL2Enabled() && HCR_EL2.<DC,VM> != '00' then DC_CIVAC(X[t])" (KVM sets
            // HCR_EL2.VM), and a clean by VA at EL1 needs no permission; a translation fault is still taken, with CM.
            Assert.Equal(NoFault, Reg(v, 11));
            Assert.Equal(NoFault, Reg(v, 12));
            Assert.Equal(DataAbortCur(0x05 | Cm | WnR), Reg(v, 13));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void At_el0_ic_ivau_and_dc_cvau_need_uci_and_dc_zva_needs_dze(bool enabled)
    {
        var (s, v) = Run(a =>
        {
            if (enabled)
            {
                // SCTLR_EL1.UCI (bit 26), DZE (bit 14).
                a.Mrs(X(1), Sctlr);
                a.MovImm(X(2), (1UL << 26) | (1UL << 14));
                a.Orr(X(1), X(1), X(2));
                a.Msr(Sctlr, X(1));
                a.Emit(Isb);
            }
            a.MovImm(X(1), 0x3C0); // SPSR: EL0t, DAIF masked
            a.Msr(Spsr, X(1));
            ulong el0 = Arm64Guest.CodeGpa + (ulong)a.Position + 16;
            a.Movz(X(25), (ushort)el0);
            a.Movk(X(25), (ushort)(el0 >> 16), 16);
            a.Msr(Elr, X(25));
            a.Eret();
            // EL0 (MMU off: no stage-1 permissions).
            a.MovImm(X(1), Data + 8);
            Faulting(a, IcIvau(1));
            a.Mov(X(11), X(20));
            Faulting(a, DcCvau(1));
            a.Mov(X(12), X(20));
            Faulting(a, DcZva(1));
            a.Mov(X(13), X(20));
            a.Mrs(X(14), Dczid);
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            if (enabled)
            {
                Assert.Equal(NoFault, Reg(v, 11));
                Assert.Equal(NoFault, Reg(v, 12));
                // DC ZVA with the MMU off: Device-nGnRnE memory, an Alignment fault (AArch64.DC ZVA), EC 0x24, WnR.
                Assert.Equal((0x24UL << 26) | Il | 0x21 | WnR, Reg(v, 13));
                Assert.Equal(4UL, Reg(v, 14)); // DCZID_EL0: BS 4 (64 bytes), DZP 0
            }
            else
            {
                // AArch64.SystemAccessTrap(EL1, 0x18).
                Assert.Equal(SysTrap(5, 1), Reg(v, 11));
                Assert.Equal(SysTrap(11, 1), Reg(v, 12));
                Assert.Equal(SysTrap(4, 1), Reg(v, 13));
                Assert.Equal(0x14UL, Reg(v, 14)); // DZP reads 1 at EL0 while SCTLR_EL1.DZE is 0
            }
        }
    }

    [Fact]
    public void Maintenance_on_an_ipa_outside_every_memslot_is_skipped_without_an_exit()
    {
        // Run asserts the first exit is the ucall: KVM skips the CM abort (kvm_incr_pc), no KVM_EXIT_MMIO.
        var (s, v) = Run(a =>
        {
            a.MovImm(X(1), NoSlot + 0x40);
            Faulting(a, DcCivac(1));
            a.Mov(X(11), X(20));
            Faulting(a, IcIvau(1));
            a.Mov(X(12), X(20));
            MmuOn(a);
            // With the MMU on: the ucall block (L2[8], VA = IPA) beyond the ucall address has no memslot either;
            // a load there would be a KVM_EXIT_MMIO, the CM is skipped.
            a.MovImm(X(1), Arm64Guest.UcallMmioGpa + 0x1000);
            Faulting(a, DcCivac(1));
            a.Mov(X(13), X(20));
            Arm64Guest.Ucall(a, 1);
        });
        using (s)
        {
            Assert.Equal(NoFault, Reg(v, 11));
            Assert.Equal(NoFault, Reg(v, 12));
            Assert.Equal(NoFault, Reg(v, 13));
        }
    }

    [Fact]
    public void Dc_zva_zeroes_the_aligned_64_byte_block_and_reads_dczid()
    {
        var (s, v) = Run(a =>
        {
            MmuOn(a);
            a.Mrs(X(14), Dczid);
            a.MovImm(X(1), Data + 0x47);
            Faulting(a, DcZva(1));
            a.Mov(X(11), X(20));
            Arm64Guest.Ucall(a, 1);
        }, t => t.Host.Write(Data, Enumerable.Repeat((byte)0xFF, 0xC0).ToArray()));
        using (s)
        {
            Assert.Equal(NoFault, Reg(v, 11));
            Assert.Equal(4UL, Reg(v, 14));
            var bytes = new byte[0xC0];
            s.Host.Read(Data, bytes);
            // The block Data + 0x40 .. Data + 0x7F (Xt aligned down to DCZID_EL0's 64 bytes) is zero; its neighbours not.
            Assert.All(bytes[0x40..0x80], b => Assert.Equal(0, b));
            Assert.Equal(0xFF, bytes[0x3F]);
            Assert.Equal(0xFF, bytes[0x80]);
        }
    }
    /// <summary>
    /// gcc's __builtin___clear_cache: a freestanding program (aarch64-linux-gnu-gcc -O2, linked with libgcc, whose
    /// __aarch64_sync_cache_range reads CTR_EL0 and, per line, runs DC CVAU unless CTR_EL0.IDC, DSB ISH, IC IVAU
    /// unless CTR_EL0.DIC, DSB ISH, ISB) writes "movz x0, #k*7; ret" three times over the same buffer, flushes it and
    /// calls it: the C semantics give 7, 14, 21, folded as ((7 * 100) + 14) * 100 + 21.
    /// </summary>
    [SkippableFact]
    public void Gcc_clear_cache_of_generated_code_runs_the_new_code()
    {
        const string Source = """
            typedef unsigned int u32;
            static u32 code[16] __attribute__((aligned(64)));
            long run(void)
            {
                long sum = 0;
                for (int k = 1; k <= 3; k++) {
                    code[0] = 0xD2800000u | ((u32)(k * 7) << 5); /* movz x0, #k*7 */
                    code[1] = 0xD65F03C0u;                        /* ret */
                    __builtin___clear_cache((char *)code, (char *)(code + 2));
                    sum = sum * 100 + ((long (*)(void))code)();
                }
                return sum;
            }
            """;
        string dir = Directory.CreateTempSubdirectory("kvmsharp-clear-cache").FullName;
        try
        {
            string c = Path.Combine(dir, "clear_cache.c"), elf = Path.Combine(dir, "clear_cache.elf");
            File.WriteAllText(c, Source);
            // -mstrict-align: the guest runs with the MMU off (Device memory: unaligned accesses fault).
            var (code, output) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-gcc",
                ["-O2", "-mstrict-align", "-ffreestanding", "-nostdlib", "-static", "-fno-pic", "-no-pie", "-Wl,-Ttext=0x100000",
                 "-Wl,-e,run", "-Wl,--build-id=none", "-o", elf, c, "-lgcc"]);
            Skip.If(code == -1, $"aarch64-linux-gnu-gcc (package gcc-aarch64-linux-gnu) is not available: {output}");
            Assert.True(code == 0, $"aarch64-linux-gnu-gcc failed ({code}): {output}");
            byte[] image = File.ReadAllBytes(elf);
            // The flush the compiler emitted is there: IC IVAU (SYS #3, C7, C5, #1) in libgcc's loop.
            Assert.Contains(Enumerable.Range(0, image.Length / 4), i => (BitConverter.ToUInt32(image, i * 4) & 0xFFFF_FFE0) == 0xD50B_7520);
            Assert.Equal(71421UL, Arm64SveCorpusTests.RunEmulated(image, 0));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
