// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// Which CR3 KVM takes: KVM_SET_SREGS (arch/x86/kvm/x86.c kvm_is_valid_sregs) and MOV CR3 (kvm_set_cr3) refuse a CR3
/// with a bit of vcpu->arch.reserved_gpa_bits (kvm_vcpu_is_legal_cr3) — the bits from the vCPU's MAXPHYADDR up
/// (cpuid_query_maxphyaddr: 36 without KVM_SET_CPUID2, else CPUID.0x80000008 EAX[7:0]). In an SEV guest whose CPUID has
/// leaf 0x8000001F the C-bit (its EBX[5:0]) is not reserved: arch/x86/kvm/svm/svm.c svm_vcpu_after_set_cpuid ("For sev
/// guests, the memory encryption bit is not reserved in CR3"), so the guest's page tables may be named by an encrypted
/// CR3. This host has no SEV (KVM_CAP_VM_TYPES = default only): the SEV cases run on the emulator's full x86 profile and
/// are skipped here with the reason (profile X86Coco, not X86: the X86 profile's cases must pass on every release
/// with guest_memfd, 6.8 included, which has no SEV VM type — GenerationSweepTests); the rules for a VM without SEV run on
/// both kernels.
/// </summary>
public static class SevCr3
{
    private const string Rule = "arch/x86/kvm/x86.c kvm_is_valid_sregs, kvm_set_cr3 → kvm_vcpu_is_legal_cr3 (vcpu->arch.reserved_gpa_bits)";
    private const string SevRule = Rule + "; arch/x86/kvm/svm/svm.c svm_vcpu_after_set_cpuid: in an SEV guest whose CPUID has leaf 0x8000001F, its C-bit (EBX[5:0]) is not reserved";

    private const byte Port = 0x10;
    private const byte DataByte = 0x5a;

    /// <summary>mov al, [Data]; out Port, al; hlt — the read goes through the page tables CR3 names.</summary>
    private static void ReadAndReport(Iced.Intel.Assembler a)
    {
        a.mov(rax, (long)SevCr3Guest.Data);
        a.mov(al, __byte_ptr[rax]);
        a.@out(Port, al);
        a.hlt();
    }

    private static void AssertReadsData(Vcpu vcpu, string what)
    {
        var exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoPort == Port, $"{what}: exit {exit.Reason}");
        Assert.True(exit.IoData[0] == DataByte, $"{what}: the guest read 0x{exit.IoData[0]:X2}, expected 0x{DataByte:X2}");
        exit = vcpu.Run();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_HLT, $"{what}: exit {exit.Reason} after the read");
    }

    [ConformanceCase(SevRule + ": KVM_SET_SREGS takes a long-mode CR3 carrying the C-bit, KVM_GET_SREGS returns it, and the guest's walk from it reaches its encrypted data",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SevVmType)]
    public static void sev_guest_cr3_may_carry_the_cbit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = SevCr3Guest.Create(kvm, ReadAndReport, kvm.GetSupportedCpuid());
        var sregs = g.Vcpu.GetSregs();
        sregs.cr3 = SevCr3Guest.Pml4 | g.CBit;
        g.Vcpu.SetSregs(sregs);
        Assert.Equal(SevCr3Guest.Pml4 | g.CBit, g.Vcpu.GetSregs().cr3);
        AssertReadsData(g.Vcpu, "CR3 with the C-bit");
    }

    [ConformanceCase(SevRule + ": the SEV guest's own MOV CR3 may set the C-bit (no #GP), and the walk from the new CR3 reaches its data",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SevVmType)]
    public static void sev_guest_mov_cr3_may_set_the_cbit(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        int cbit = SnpGuest.CbitPosition(kvm);
        using var g = SevCr3Guest.Create(kvm, a =>
        {
            a.mov(rax, cr3);
            a.mov(rbx, unchecked((long)(1UL << cbit)));
            a.or(rax, rbx);
            a.mov(cr3, rax);
            ReadAndReport(a);
        }, kvm.GetSupportedCpuid());
        AssertReadsData(g.Vcpu, "after MOV CR3 with the C-bit");
        Assert.Equal(SevCr3Guest.Pml4 | g.CBit, g.Vcpu.GetSregs().cr3);
    }

    [ConformanceCase(SevRule + ": the C-bit is reserved in an SEV guest's CR3 until KVM_SET_CPUID2 gives the vCPU leaf 0x8000001F — without a CPUID (MAXPHYADDR 36) and with a table lacking the leaf, KVM_SET_SREGS is EINVAL",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SevVmType)]
    public static void sev_guest_cr3_cbit_needs_the_cpuid_leaf(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var table = kvm.GetSupportedCpuid();
        using (var g = SevCr3Guest.Create(kvm, ReadAndReport, cpuid: null))
        {
            var sregs = g.Vcpu.GetSregs();
            sregs.cr3 = SevCr3Guest.Pml4 | g.CBit;
            CaseContext.AssertErrno(Errno.EINVAL, () => g.Vcpu.SetSregs(sregs));
        }
        using (var g = SevCr3Guest.Create(kvm, ReadAndReport, [.. table.Where(e => e.Function != 0x8000_001f)]))
        {
            var sregs = g.Vcpu.GetSregs();
            sregs.cr3 = SevCr3Guest.Pml4 | g.CBit;
            CaseContext.AssertErrno(Errno.EINVAL, () => g.Vcpu.SetSregs(sregs));
            // The rest of the check is unchanged: a CR3 without the C-bit is taken.
            sregs.cr3 = SevCr3Guest.Pml4;
            g.Vcpu.SetSregs(sregs);
        }
    }

    [ConformanceCase(Rule + ": on a VM without SEV the reserved CR3 bits start at MAXPHYADDR — 36 before KVM_SET_CPUID2 (bit 36 EINVAL), CPUID.0x80000008 EAX[7:0] after it (its top bit taken, the next one and bit 51, an SEV guest's C-bit, EINVAL)")]
    public static void cr3_reserved_bits_follow_maxphyaddr_without_sev(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        var sregs = vcpu.GetSregs();
        LongMode.Apply(ref sregs);
        sregs.cr3 = 0x1000;
        vcpu.SetSregs(sregs);
        sregs.cr3 = (1UL << 36) | 0x1000;
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.SetSregs(sregs));

        var table = kvm.GetSupportedCpuid();
        vcpu.SetCpuid(table);
        int maxPhyAddr = MaxPhyAddr(table);
        Assert.True(maxPhyAddr is > 36 and <= 51, $"KVM_GET_SUPPORTED_CPUID's MAXPHYADDR is {maxPhyAddr}");
        sregs.cr3 = (1UL << (maxPhyAddr - 1)) | 0x1000;
        vcpu.SetSregs(sregs);
        Assert.Equal(sregs.cr3, vcpu.GetSregs().cr3);
        sregs.cr3 = (1UL << maxPhyAddr) | 0x1000;
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.SetSregs(sregs));
        sregs.cr3 = (1UL << 51) | 0x1000;
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.SetSregs(sregs));
    }

    [ConformanceCase(Rule + ": on a VM without SEV, a guest MOV CR3 with bit 51 (an SEV guest's C-bit, above MAXPHYADDR) is #GP(0) and CR3 keeps its value")]
    public static void mov_cr3_with_bit_51_is_gp_without_sev(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(rax, cr3);
            a.mov(rbx, 1L << 51);
            a.or(rax, rbx);
            a.mov(cr3, rax);
            a.hlt();
        }, Enumerable.Range(0, 32).Select(v => new IdtVector(v)));
        g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
        ulong before = g.Vcpu.GetSregs().cr3;
        var exit = g.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, exit.Reason);
        var d = g.Single();
        Assert.True(d.Vector == 13 && d.ErrorCode == 0, $"vector {d.Vector}, error 0x{d.ErrorCode:X}; expected #GP(0)");
        Assert.Equal(before, g.Vcpu.GetSregs().cr3);
    }

    /// <summary>cpuid_query_maxphyaddr over a table: CPUID.0x80000008 EAX[7:0] when leaf 0x80000000 reaches it, else 36.</summary>
    private static int MaxPhyAddr(IReadOnlyList<CpuidEntry> table)
    {
        var max = table.FirstOrDefault(e => e.Function == 0x8000_0000);
        var leaf = table.FirstOrDefault(e => e.Function == 0x8000_0008);
        return max.Eax >= 0x8000_0008 && leaf.Function == 0x8000_0008 ? (int)(leaf.Eax & 0xff) : 36;
    }

    /// <summary>
    /// A plain SEV guest launched as a VMM launches one (Documentation/virt/kvm/x86/amd-memory-encryption.rst:
    /// KVM_SEV_INIT2, vCPU, LAUNCH_START, LAUNCH_UPDATE_DATA of the image, LAUNCH_MEASURE, LAUNCH_FINISH): 64 KiB of ordinary memory at
    /// GPA 0 with page tables at <see cref="Pml4"/> … <see cref="Pt"/> mapping it 4 KiB at a time, every PTE with the
    /// C-bit, code at <see cref="Code"/> and <see cref="DataByte"/> at <see cref="Data"/>, all encrypted in place by
    /// LAUNCH_UPDATE_DATA. The vCPU is in long mode with CR3 = <see cref="Pml4"/> (no C-bit), its CPUID the table given
    /// (none: no KVM_SET_CPUID2).
    /// </summary>
    private sealed class SevCr3Guest : IDisposable
    {
        public const ulong Size = 0x1_0000;
        public const ulong Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000, Pt = 0x4000, Code = 0x5000, Data = 0x6000;
        private const ulong Page = 0x1000, PresentWritable = 3;

        private readonly OwnedResources _owned;

        private SevCr3Guest(OwnedResources owned, Vcpu vcpu, ulong cbit)
        {
            _owned = owned;
            Vcpu = vcpu;
            CBit = cbit;
        }

        public Vcpu Vcpu { get; }

        public ulong CBit { get; }

        public static SevCr3Guest Create(Kvm kvm, Action<Iced.Intel.Assembler> program, IReadOnlyList<CpuidEntry>? cpuid)
        {
            ulong cbit = 1UL << SnpGuest.CbitPosition(kvm);
            var owned = new OwnedResources();
            try
            {
                var vm = owned.Add(kvm.CreateVm(VmType.Sev));
                var launch = owned.Add(SevLaunch.Open(vm));
                launch.Init();
                var memory = owned.Add(vm.AllocateMemory(Size));
                owned.Add(vm.AddMemorySlot(0, 0, memory));
                var vcpu = owned.Add(vm.CreateVcpu(0));
                if (cpuid is not null) vcpu.SetCpuid(cpuid);

                memory.Write(Pml4, Pdpt | cbit | PresentWritable);
                memory.Write(Pdpt, Pd | cbit | PresentWritable);
                memory.Write(Pd, Pt | cbit | PresentWritable);
                for (ulong page = 0; page < Size; page += Page) memory.Write(Pt + (page / Page * 8), page | cbit | PresentWritable);
                memory.Write(Code, Assemble(program));
                memory.Fill(Data, Page, DataByte);

                var sregs = vcpu.GetSregs();
                LongMode.Apply(ref sregs);
                sregs.cr3 = Pml4;
                vcpu.SetSregs(sregs);
                var regs = vcpu.GetRegs();
                regs.rip = Code;
                regs.rflags = 2;
                vcpu.SetRegs(regs);

                // Policy 1 (NODBG). LAUNCH_UPDATE_DATA encrypts the image in place with the guest's key; the firmware
                // takes LAUNCH_FINISH after LAUNCH_MEASURE (LUPDATE → LSECRET → RUNNING).
                launch.Start(policy: 1);
                launch.UpdateData(memory.Address + (nint)Pml4, (uint)(Data + Page - Pml4));
                _ = launch.Measure();
                launch.Finish();
                return new SevCr3Guest(owned, vcpu, cbit);
            }
            catch
            {
                owned.Dispose();
                throw;
            }
        }

        private static byte[] Assemble(Action<Iced.Intel.Assembler> program)
        {
            var asm = new Iced.Intel.Assembler(64);
            program(asm);
            using var stream = new MemoryStream();
            asm.Assemble(new Iced.Intel.StreamCodeWriter(stream), Code);
            return stream.ToArray();
        }

        public void Dispose() => _owned.Dispose();
    }
}
