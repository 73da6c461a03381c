// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SVE first-fault / non-fault loads and FFR (A64Interpreter.SveFirstFault.cs), structure loads and stores and
/// scatter stores (A64Interpreter.SveStructures.cs) where their faults matter: with the MMU on (4 KiB identity map of
/// the 64 KiB slot, VA 0x10000 unmapped or mapped outside guest memory) and off. Expected values are the Arm ARM
/// pseudocode's (LDFF1B: Mem[] for the first active element, MemNF[] — no exception, FFR cleared from the element
/// on — for the rest; LDNF1B: MemNF[] for all; ST1D scatter: Mem[] writes in element order). Encodings are GNU as
/// output (aarch64-linux-gnu-as -march=armv8.2-a+sve). The vCPU is the Neoverse-V1-like model at 256 bits
/// (ZCR_EL1.LEN = 1: 32 byte elements, 4 doubleword elements). Two tests compare with qemu-aarch64 -cpu
/// max,sve256=on directly: first-fault / non-fault loads at a PROT_NONE page boundary, and half-precision SVE
/// arithmetic (A64Interpreter.SveHalf.cs) on NaNs, infinities, zeros and subnormals in every rounding mode and with
/// FPCR.DN, FPSR's cumulative flags included. qemu comparisons of compiled loops using these instructions are in
/// <see cref="Arm64SveCorpusTests"/>. (A scatter store that faults partway is the exception: qemu-user probes every
/// element before storing any, measured: nothing written; the test follows the pseudocode's element order.)
/// </summary>
public class Arm64SveFirstFaultTests
{
    private const uint SveFeature = 1u << KvmArm64Constants.KVM_ARM_VCPU_SVE;
    private const ulong L0 = 0x4000, L1 = 0x5000, L2 = 0x6000, L3 = 0x7000, Data = 0x9000, PageEnd = 0xFFF0, Unmapped = 0x1_0000;

    // Encodings (aarch64-linux-gnu-as -march=armv8.2-a+sve).
    private const uint PtrueB = 0x2518E3E0, PtrueS = 0x2598E3E0, PtrueD = 0x25D8E3E0, Setffr = 0x252C9000;
    private const uint Ldff1bX1 = 0xA41F6020;     // ldff1b {z0.b}, p0/z, [x1, xzr]
    private const uint Ldnf1bX1 = 0xA410A020;     // ldnf1b {z0.b}, p0/z, [x1]
    private const uint RdffrP1 = 0x2519F001;      // rdffr p1.b
    private const uint RdffrsP2 = 0x2558F002;     // rdffrs p2.b, p0/z
    private const uint MrsNzcvX3 = 0xD53B4203;    // mrs x3, nzcv
    private const uint St3w = 0xE550E021;         // st3w {z1.s-z3.s}, p0, [x1]
    private const uint Ld3w = 0xA540E024;         // ld3w {z4.s-z6.s}, p0/z, [x1]
    private const uint St3wSs = 0xE5426021;       // st3w {z1.s-z3.s}, p0, [x1, x2, lsl #2]
    private const uint Ld3wImm = 0xA541E024;      // ld3w {z4.s-z6.s}, p0/z, [x1, #3, mul vl]
    private const uint St1dScatter = 0xE581A020;  // st1d {z0.d}, p0, [x1, z1.d]
    private const uint Ldff1dGather = 0xC5C1E020; // ldff1d {z0.d}, p0/z, [x1, z1.d]

    private static ulong Enc(int op1, int crn, int crm, int op2) => KvmArm64SysRegs.Encoding(3, op1, crn, crm, op2);

    private static readonly ulong Sctlr = Enc(0, 1, 0, 0), Esr = Enc(0, 5, 2, 0), Far = Enc(0, 6, 0, 0);

    // T0SZ 16, TG0 4K, EPD1, TG1 4K, IPS 40 bits.
    private const ulong TcrValue = 16 | (1UL << 23) | (2UL << 30) | (2UL << 32);

    private static ulong Leaf(ulong oa) => oa | 3 | (1UL << 10);

    private static void Put(Arm64TestVm s, ulong table, int index, ulong desc) => s.Host.Write(table + (ulong)index * 8, BitConverter.GetBytes(desc));

    /// <summary>
    /// Runs <paramref name="words"/> (after turning the MMU on when <paramref name="mmu"/>) and ucall 1; the EL1h
    /// synchronous vector records ESR_EL1 in x20 and FAR_EL1 in x21 and makes ucall 2. <paramref name="page16"/>: the
    /// level-3 descriptor of VA 0x10000 (0: invalid); <paramref name="before"/> fills guest memory. Returns the VM and the ucall code.
    /// </summary>
    private static (Arm64TestVm Vm, ulong Code) Run(uint[] words, Action<KvmSharp.Vcpu> setUp, bool mmu = true, ulong page16 = 0,
        Action<KvmSharp.Vcpu, Arm64TestVm>? before = null)
    {
        var s = new Arm64TestVm(a =>
        {
            if (mmu)
            {
                Arm64MmuSetup.Emit(a, TcrValue, L0);
            }
            a.MovImm(X(1), Data);
            foreach (uint w in words) a.Emit(w);
            Arm64Guest.Ucall(a, 1);
        }, EmulatorConfig.Arm64() with { Arm64Cpu = Arm64CpuModel.NeoverseV1 });
        Put(s, L0, 0, L1 | 3);
        Put(s, L1, 0, L2 | 3);
        Put(s, L2, 0, L3 | 3);
        Put(s, L2, 8, (Arm64Guest.UcallMmioGpa & ~0x1F_FFFFUL) | 1 | (1UL << 10));
        for (int i = 0; i < 16; i++) Put(s, L3, i, Leaf((ulong)i << 12));
        Put(s, L3, 16, page16);
        s.Host.Write(0x200, Arm64Guest.Assemble(a =>
        {
            a.Mrs(X(20), Esr);
            a.Mrs(X(21), Far);
            Arm64Guest.Ucall(a, 2);
        }));
        var v = s.AddVcpu(SveFeature);
        v.FinalizeSve();
        v.SetOneReg(ZCR_EL1, 1);
        v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        setUp(v);
        before?.Invoke(v, s);
        var exit = v.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        return (s, BitConverter.ToUInt64(exit.MmioData));
    }

    private static ulong Xr(Arm64TestVm s, int n) => s.Vcpus[0].GetOneReg(KvmArm64Regs.X(n));

    private static byte[] Zr(Arm64TestVm s, int n) => s.Vcpus[0].GetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(n, 0))[..32];

    private static byte[] Pr(Arm64TestVm s, int n) => s.Vcpus[0].GetOneRegBytes(KVM_REG_ARM64_SVE_PREG(n, 0))[..4];

    private static byte[] Ffr(Arm64TestVm s) => s.Vcpus[0].GetOneRegBytes(KVM_REG_ARM64_SVE_FFR(0))[..4];

    private static void SetZ(KvmSharp.Vcpu v, int n, Func<int, byte> value)
    {
        byte[] z = new byte[256];
        for (int i = 0; i < 32; i++) z[i] = value(i);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(n, 0), z);
    }

    private static void SetZ64(KvmSharp.Vcpu v, int n, params ulong[] elements)
    {
        byte[] z = new byte[256];
        for (int i = 0; i < elements.Length; i++) BitConverter.TryWriteBytes(z.AsSpan(8 * i), elements[i]);
        v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(n, 0), z);
    }

    private static byte[] Bytes(int from, int count) => [.. Enumerable.Range(from, count).Select(i => (byte)i)];

    /// <summary>Guest bytes 0xFFF0..0xFFFF = 1..16 (the last 16 bytes before VA 0x10000).</summary>
    private static void FillPageEnd(KvmSharp.Vcpu v, Arm64TestVm s) => s.Host.Write(PageEnd, Bytes(1, 16));

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // VA 0x10000 mapped to an IPA outside every memslot: MemNF reports the fault, no MMIO exit
    public void A_first_fault_load_reads_up_to_the_faulting_page_and_clears_ffr_from_there_without_an_exception(bool mmio)
    {
        var (s, code) = RunWithData([PtrueB, 0xAA0703E1, Setffr, Ldff1bX1, RdffrP1, RdffrsP2, MrsNzcvX3], PageEnd, mmio ? Leaf(Unmapped) : 0);
        using (s)
        {
            Assert.Equal(1UL, code);
            Assert.Equal([.. Bytes(1, 16), .. new byte[16]], Zr(s, 0));
            Assert.Equal(new byte[] { 0xFF, 0xFF, 0, 0 }, Pr(s, 1));
            Assert.Equal(new byte[] { 0xFF, 0xFF, 0, 0 }, Ffr(s));
            // PredTest(p0, p2, 8): first active true (N), some true (not Z), last active false (C).
            Assert.Equal(0xA000_0000UL, Xr(s, 3));
        }
    }

    /// <summary>Runs with guest bytes 1..16 at 0xFFF0, Z0 = 0xAA…, FFR = 0, x1 = <paramref name="x1"/> (mov x1, x7).</summary>
    private static (Arm64TestVm Vm, ulong Code) RunWithData(uint[] words, ulong x1, ulong page16 = 0, bool mmu = true)
    {
        return Run(words, v =>
        {
            SetZ(v, 0, _ => 0xAA);
            v.SetOneReg(KvmArm64Regs.X(7), x1);
        }, mmu, page16, before: FillPageEnd);
    }

    [Fact]
    public void A_first_fault_load_whose_first_active_element_faults_takes_the_data_abort_and_changes_nothing()
    {
        var (s, code) = RunWithData([PtrueB, 0xAA0703E1, Setffr, Ldff1bX1], Unmapped);
        using (s)
        {
            Assert.Equal(2UL, code);
            // EC 0x25 (data abort, current EL), IL, DFSC 0b000111 (translation fault, level 3), a read.
            Assert.Equal((0x25UL << 26) | (1UL << 25) | 0x07, Xr(s, 20));
            Assert.Equal(Unmapped, Xr(s, 21));
            Assert.All(Zr(s, 0), b => Assert.Equal(0xAA, b));
            Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, Ffr(s)); // SETFFR's value, not cleared
        }
    }

    [Theory]
    [InlineData(PageEnd, 16)]
    [InlineData(Unmapped, 0)]
    public void A_non_fault_load_never_takes_an_exception(ulong address, int loaded)
    {
        var (s, code) = RunWithData([PtrueB, 0xAA0703E1, Setffr, Ldnf1bX1, RdffrP1], address);
        using (s)
        {
            Assert.Equal(1UL, code);
            Assert.Equal([.. Bytes(1, loaded), .. new byte[32 - loaded]], Zr(s, 0));
            byte[] ffr = [.. Enumerable.Range(0, 4).Select(i => (byte)(i < loaded / 8 ? 0xFF : 0))];
            Assert.Equal(ffr, Ffr(s));
            Assert.Equal(ffr, Pr(s, 1));
        }
    }

    [Fact]
    public void With_the_mmu_off_only_the_first_element_of_a_first_fault_load_is_read_and_a_non_fault_load_reads_nothing()
    {
        // SCTLR_EL1.M = 0: every data access is Device-nGnRnE, which MemNF[] never performs.
        var (s, code) = RunWithData([PtrueB, 0xAA0703E1, Setffr, Ldff1bX1, RdffrP1, Setffr, 0xA410A022 /* ldnf1b {z2.b}, p0/z, [x1] */, 0x2519F003 /* rdffr p3.b */],
            PageEnd, mmu: false);
        using (s)
        {
            Assert.Equal(1UL, code);
            Assert.Equal([1, .. new byte[31]], Zr(s, 0));
            Assert.Equal(new byte[] { 1, 0, 0, 0 }, Pr(s, 1));
            Assert.Equal(new byte[32], Zr(s, 2));
            Assert.Equal(new byte[4], Pr(s, 3));
        }
    }

    [Fact]
    public void A_first_fault_gather_clears_ffr_from_the_first_faulting_element_even_when_later_ones_are_mapped()
    {
        var (s, code) = Run([PtrueD, 0xD2800001 /* mov x1, #0 */, Setffr, Ldff1dGather, RdffrP1], v =>
        {
            SetZ64(v, 1, Data, Unmapped, Data + 8, Data + 16);
        }, before: (_, vm) => vm.Host.Write(Data, [.. Enumerable.Range(1, 24).Select(i => (byte)i)]));
        using (s)
        {
            Assert.Equal(1UL, code);
            Assert.Equal([.. Bytes(1, 8), .. new byte[24]], Zr(s, 0));
            Assert.Equal(new byte[] { 0xFF, 0, 0, 0 }, Pr(s, 1));
        }
    }

    [Fact]
    public void A_scatter_store_that_faults_partway_has_written_the_elements_before_the_fault()
    {
        var (s, code) = Run([PtrueD, 0xD2800001 /* mov x1, #0 */, St1dScatter], v =>
        {
            SetZ64(v, 0, 0x1111, 0x2222, 0x3333, 0x4444);
            SetZ64(v, 1, Data, Unmapped, Data + 8, Data + 16);
        });
        using (s)
        {
            Assert.Equal(2UL, code);
            // DFSC translation fault level 3, WnR.
            Assert.Equal((0x25UL << 26) | (1UL << 25) | (1UL << 6) | 0x07, Xr(s, 20));
            Assert.Equal(Unmapped, Xr(s, 21));
            byte[] mem = new byte[24];
            s.Host.Read(Data, mem);
            Assert.Equal(0x1111UL, BitConverter.ToUInt64(mem, 0));
            Assert.Equal(0UL, BitConverter.ToUInt64(mem, 8));
            Assert.Equal(0UL, BitConverter.ToUInt64(mem, 16));
        }
    }

    [Fact]
    public void St3_and_ld3_round_trip_through_interleaved_memory_in_both_addressing_forms()
    {
        var (s, code) = Run([PtrueS, St3w, Ld3w, 0xD2800302 /* mov x2, #24 */, St3wSs, 0x04643087 /* mov z7.d, z4.d */, Ld3wImm], v =>
        {
            SetZ(v, 1, i => (byte)(0x10 + i));
            SetZ(v, 2, i => (byte)(0x40 + i));
            SetZ(v, 3, i => (byte)(0x80 + i));
        }, mmu: false);
        using (s)
        {
            Assert.Equal(1UL, code);
            byte[] mem = new byte[96];
            s.Host.Read(Data, mem);
            for (int e = 0; e < 8; e++)
            {
                for (int r = 0; r < 3; r++)
                {
                    uint expected = BitConverter.ToUInt32(Zr(s, 1 + r), 4 * e);
                    Assert.Equal(expected, BitConverter.ToUInt32(mem, 4 * (3 * e + r)));
                }
            }
            Assert.Equal(Zr(s, 1), Zr(s, 7)); // the first LD3W (copied before the second)
            Assert.Equal(Zr(s, 1), Zr(s, 4));
            Assert.Equal(Zr(s, 2), Zr(s, 5));
            Assert.Equal(Zr(s, 3), Zr(s, 6));
            byte[] second = new byte[96];
            s.Host.Read(Data + 96, second);
            Assert.Equal(mem, second);
        }
    }

    /// <summary>
    /// The qemu oracle: a hosted program maps two pages, makes the second PROT_NONE, and for each case runs the same
    /// words (.inst) with x1 at an offset from the first page — Z0 preset to 0xAA…, SETFFR, the load, RDFFR P1 — and
    /// prints Z0 and P1 (qemu-aarch64 -cpu max,sve256=on). The emulator runs the words with the MMU on, VA 0xF000 the
    /// first page and 0x10000 unmapped, the same bytes in the page.
    /// </summary>
    private static readonly (uint Ptrue, uint Load, int Offset, string Name)[] OracleCases =
    [
        (PtrueB, Ldff1bX1, 4080, "ldff1b {z0.b}, p0/z, [x1, xzr] 16 bytes before the boundary"),
        (PtrueB, Ldnf1bX1, 4080, "ldnf1b {z0.b}, p0/z, [x1] 16 bytes before the boundary"),
        (PtrueB, Ldnf1bX1, 4096, "ldnf1b {z0.b}, p0/z, [x1] in the protected page"),
        (PtrueD, Ldff1dGather, 0, "ldff1d {z0.d}, p0/z, [x1, z1.d], z1 = {8, 4096, 16, 24}"),
        (PtrueS, 0xA55F6020, 4084, "ldff1w {z0.s}, p0/z, [x1, xzr, lsl #2] 12 bytes before the boundary"),
        (PtrueS, 0xA4D0A020, 4090, "ldnf1h {z0.s}, p0/z, [x1] 6 bytes before the boundary"),
    ];

    private const string OracleSource = """
        #include <stdio.h>
        #include <stdint.h>
        #include <sys/mman.h>
        static void show(const uint8_t *b, int n) { for (int i = 0; i < n; i++) printf("%02x", b[i]); }
        #define CASE(PT, LD, OFF) do { \
            uint8_t z[32], f[4]; \
            __asm__ volatile("ptrue p7.d\n ld1d {z1.d}, p7/z, [%3]\n mov x1, %0\n .inst " #PT "\n dup z0.b, #-86\n setffr\n" \
                             " .inst " #LD "\n rdffr p1.b\n str z0, [%1]\n str p1, [%2]\n" \
                             : : "r"(p + (OFF)), "r"(z), "r"(f), "r"(off) : "memory", "x1", "z0", "z1", "p0", "p1", "p7"); \
            show(z, 32); printf(" "); show(f, 4); printf("\n"); } while (0)
        int main(void)
        {
            uint8_t *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            for (int i = 0; i < 4096; i++) p[i] = (uint8_t)(i * 7 + 3);
            mprotect(p + 4096, 4096, PROT_NONE);
            static const uint64_t off[4] = { 8, 4096, 16, 24 };
        CASES
            return 0;
        }
        """;

    [SkippableFact]
    public void First_fault_and_non_fault_loads_at_a_page_boundary_give_what_qemu_gives()
    {
        string[] expected = SveQemuOracle.Lines(OracleSource.Replace("CASES", string.Join("\n",
            OracleCases.Select(c => $"    CASE(0x{c.Ptrue:X8}, 0x{c.Load:X8}, {c.Offset});"))), OracleCases.Length);
        const ulong page = 0xF000;
        for (int i = 0; i < OracleCases.Length; i++)
        {
            var c = OracleCases[i];
            var (s, ucall) = Run([0x25D8E3E7 /* ptrue p7.d */, 0xAA0703E1 /* mov x1, x7 */, c.Ptrue, 0x2538D540 /* dup z0.b, #-86 */, Setffr, c.Load, RdffrP1], v =>
            {
                SetZ64(v, 1, 8, 4096, 16, 24);
                v.SetOneReg(KvmArm64Regs.X(7), page + (ulong)c.Offset);
            }, before: (_, vm) => vm.Host.Write(page, [.. Enumerable.Range(0, 4096).Select(b => (byte)(b * 7 + 3))]));
            using (s)
            {
                Assert.Equal(1UL, ucall);
                string actual = Convert.ToHexStringLower(Zr(s, 0)) + " " + Convert.ToHexStringLower(Pr(s, 1));
                Assert.True(expected[i] == actual, $"{c.Name}: qemu {expected[i]}, emulator {actual}");
            }
        }
    }

    private static readonly (uint Word, string Name)[] HalfOps =
    [
        (0x65420020, "fadd z0.h, z1.h, z2.h"), (0x65420820, "fmul z0.h, z1.h, z2.h"), (0x654D8020, "fdiv z0.h, p0/m, z0.h, z1.h"),
        (0x65620020, "fmla z0.h, p0/m, z1.h, z2.h"), (0x6562A020, "fmsb z0.h, p0/m, z1.h, z2.h"), (0x65488040, "fabd z0.h, p0/m, z0.h, z2.h"),
        (0x65448020, "fmaxnm z0.h, p0/m, z0.h, z1.h"), (0x65478040, "fmin z0.h, p0/m, z0.h, z2.h"), (0x654DA020, "fsqrt z0.h, p0/m, z1.h"),
        (0x65424021, "fcmge p1.h, p0/z, z1.h, z2.h"), (0x65416001, "fcmeq p1.h, p0/z, z0.h, z1.h"), (0x65402020, "faddv h0, p0, z1.h"),
        (0x65582040, "fadda h0, p0, h0, z2.h"), (0x655B8020, "fsubr z0.h, p0/m, z0.h, #1.0"), (0x655A8020, "fmul z0.h, p0/m, z0.h, #2.0"),
        (0x6542E011, "facgt p1.h, p0/z, z0.h, z2.h"),
    ];

    // Sixteen halves each: ±1, ±∞, ±0, signalling and quiet NaNs, the smallest and largest subnormals and normals, ….
    private static readonly ushort[] H0 = [0x3C00, 0x0000, 0x7C00, 0x7C00, 0x8000, 0x3C00, 0x7E05, 0x7D01, 0x8002, 0x0400, 0x77FF, 0x3555, 0x4000, 0xC000, 0x1000, 0xE000];
    private static readonly ushort[] H1 = [0x3C00, 0xBC00, 0x7C00, 0xFC00, 0x0000, 0x8000, 0x7D00, 0x7E01, 0x0001, 0x03FF, 0x7BFF, 0x3555, 0x4248, 0xC880, 0x1400, 0x5BFF];
    private static readonly ushort[] H2 = [0x3C01, 0x7C00, 0xFC00, 0x7E00, 0x8000, 0xFD55, 0x3800, 0x0001, 0x8001, 0x7BFF, 0x7BFF, 0x3555, 0xC248, 0x4880, 0x0400, 0xDBFF];

    /// <summary>FPCR values: round to nearest, towards +∞, towards −∞, towards zero, and default NaN.</summary>
    private static readonly uint[] Fpcrs = [0, 0x40_0000, 0x80_0000, 0xC0_0000, 0x200_0000];

    private const string HalfSource = """
        #include <stdio.h>
        #include <stdint.h>
        static const uint16_t h0[16] = { H0 }, h1[16] = { H1 }, h2[16] = { H2 };
        static void show(const uint8_t *b, int n) { for (int i = 0; i < n; i++) printf("%02x", b[i]); }
        #define CASE(OP, FPCR) do { \
            uint8_t z[32], f[4]; uint64_t fpsr; \
            __asm__ volatile("ldr z0, [%0]\n ldr z1, [%1]\n ldr z2, [%2]\n pfalse p1.b\n mov x5, %3\n ptrue p0.h\n msr fpcr, x5\n msr fpsr, xzr\n" \
                             " .inst " #OP "\n mrs x6, fpsr\n msr fpcr, xzr\n str z0, [%4]\n str p1, [%5]\n str x6, [%6]\n" \
                             : : "r"(h0), "r"(h1), "r"(h2), "r"((uint64_t)(FPCR)), "r"(z), "r"(f), "r"(&fpsr) \
                             : "memory", "x5", "x6", "z0", "z1", "z2", "p0", "p1"); \
            show(z, 32); printf(" "); show(f, 4); printf(" %02x\n", (unsigned)fpsr & 0x9f); } while (0)
        int main(void)
        {
        CASES
            return 0;
        }
        """;

    [SkippableFact]
    public void Half_precision_arithmetic_compares_and_reductions_give_what_qemu_gives_in_every_rounding_mode()
    {
        static string List(ushort[] h) => string.Join(", ", h.Select(x => $"0x{x:X4}"));
        var cases = (from op in HalfOps from fpcr in Fpcrs select (op.Word, op.Name, Fpcr: fpcr)).ToArray();
        string[] expected = SveQemuOracle.Lines(HalfSource.Replace("{ H0 }", $"{{ {List(H0)} }}").Replace("{ H1 }", $"{{ {List(H1)} }}").Replace("{ H2 }", $"{{ {List(H2)} }}")
            .Replace("CASES", string.Join("\n", cases.Select(c => $"    CASE(0x{c.Word:X8}, 0x{c.Fpcr:X});"))), cases.Length);
        static byte[] Z(ushort[] h) => [.. h.SelectMany(BitConverter.GetBytes)];
        var failures = new List<string>();
        for (int i = 0; i < cases.Length; i++)
        {
            var c = cases[i];
            var (s, ucall) = Run([0x2518E401 /* pfalse p1.b */, 0x2558E3E0 /* ptrue p0.h */, 0xD51B4405 /* msr fpcr, x5 */, 0xD51B443F /* msr fpsr, xzr */, c.Word, 0xD53B4426 /* mrs x6, fpsr */], v =>
            {
                v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(0, 0), [.. Z(H0), .. new byte[224]]);
                v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(1, 0), [.. Z(H1), .. new byte[224]]);
                v.SetOneRegBytes(KVM_REG_ARM64_SVE_ZREG(2, 0), [.. Z(H2), .. new byte[224]]);
                v.SetOneReg(KvmArm64Regs.X(5), c.Fpcr);
            }, mmu: false);
            using (s)
            {
                Assert.Equal(1UL, ucall);
                string actual = $"{Convert.ToHexStringLower(Zr(s, 0))} {Convert.ToHexStringLower(Pr(s, 1))} {Xr(s, 6) & 0x9f:x2}";
                if (expected[i] != actual) failures.Add($"{c.Name} FPCR 0x{c.Fpcr:X}: qemu {expected[i]}, emulator {actual}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
