// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// x86 MSRs through KVM_GET_MSR_INDEX_LIST, KVM_GET_MSRS / KVM_SET_MSRS (host-initiated: arch/x86/kvm/x86.c
/// kvm_arch_dev_ioctl, msr_io, __msr_io, kvm_get_msr_common, kvm_set_msr_common, kvm_do_msr_access) and RDMSR/WRMSR
/// in a guest (kvm_emulate_rdmsr / kvm_emulate_wrmsr: #GP on failure, ignore_msrs N).
/// </summary>
public static class MsrRules
{
    private const uint Unknown = 0x1234_5678;
    private const uint ArchCapabilities = 0x10a;

    private static IdtVector[] Resuming => [.. Enumerable.Range(0, 32).Select(v => new IdtVector(v, ResumeSkip: 2))];

    [ConformanceCase("x86.c kvm_arch_dev_ioctl KVM_GET_MSR_INDEX_LIST: the needed count is written back; n below it is E2BIG; the list holds the syscall/sysenter MSRs, not EFER/FS_BASE/APIC_BASE")]
    public static void msr_index_list_e2big_and_contents(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (uint request in new[] { KvmIoctls.KVM_GET_MSR_INDEX_LIST, KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST })
        {
            string name = KvmIoctls.NameOf(request);
            var header = new byte[4];
            CaseContext.AssertErrno(Errno.E2BIG, ctx.Kernel.Ioctl(kvm.Handle, request, header), $"{name} n=0");
            uint needed = BinaryPrimitives.ReadUInt32LittleEndian(header);
            Assert.True(needed > 0, $"{name}: n=0 wrote back {needed}");

            var small = new byte[4 * (int)needed];
            BinaryPrimitives.WriteUInt32LittleEndian(small, needed - 1);
            CaseContext.AssertErrno(Errno.E2BIG, ctx.Kernel.Ioctl(kvm.Handle, request, small), $"{name} n={needed - 1}");
            Assert.Equal(needed, BinaryPrimitives.ReadUInt32LittleEndian(small));

            // Room for more: the count is written back and nothing beyond the list is touched.
            var big = new byte[4 * ((int)needed + 6)];
            BinaryPrimitives.WriteUInt32LittleEndian(big, needed + 5);
            big.AsSpan(4 * ((int)needed + 1)).Fill(0xee);
            Assert.Equal(0, ctx.Kernel.Ioctl(kvm.Handle, request, big));
            Assert.Equal(needed, BinaryPrimitives.ReadUInt32LittleEndian(big));
            Assert.All(big[(4 * ((int)needed + 1))..].ToArray(), b => Assert.Equal(0xee, b));
        }

        var list = kvm.GetMsrIndexList();
        Assert.Equal(list.Count, list.Distinct().Count());
        foreach (uint msr in new[] { X86Msr.SysenterCs, X86Msr.SysenterEsp, X86Msr.SysenterEip, X86Msr.Star, X86Msr.Lstar,
                     X86Msr.Cstar, X86Msr.SyscallMask, X86Msr.KernelGsBase, X86Msr.Tsc, X86Msr.Pat, X86Msr.MiscEnable })
            Assert.Contains(msr, list);
        foreach (uint msr in new[] { X86Msr.Efer, X86Msr.FsBase, X86Msr.GsBase, X86Msr.ApicBase })
            Assert.DoesNotContain(msr, list);
        Assert.Contains(ArchCapabilities, kvm.GetMsrFeatureIndexList());
    }

    [ConformanceCase("kvm_arch_dev_ioctl / kvm_arch_vm_ioctl / kvm_arch_vcpu_ioctl: the MSR requests on the wrong fd (ENOTTY on a VM, EINVAL elsewhere)")]
    public static void msr_requests_on_the_wrong_fd(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var buffer = new byte[64];
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_MSR_INDEX_LIST, buffer), "index list on a VM");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_MSR_INDEX_LIST, buffer), "index list on a vCPU");
        CaseContext.AssertErrno(Errno.ENOTTY, ctx.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_GET_MSRS, buffer), "KVM_GET_MSRS on a VM");
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_SET_MSRS, buffer), "KVM_SET_MSRS on /dev/kvm");
        // KVM_GET_MSRS on /dev/kvm reads feature MSRs (do_get_feature_msr): a to-save MSR reads as 0 through
        // kvm_do_msr_access's fallback, an unknown one stops the count.
        Assert.Equal(1, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_MSRS, Msrs((X86Msr.Star, 5))));
        Assert.Equal(0, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_MSRS, Msrs((Unknown, 5))));
    }

    [ConformanceCase("x86.c msr_io/__msr_io: the result is the count processed, stopping at the first refused MSR; a refused read is zeroed; nmsrs >= MAX_IO_MSRS (256) is E2BIG")]
    public static void msrs_count_stops_at_first_refused(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var get = Msrs((X86Msr.Star, 0x55), (Unknown, 0x66), (X86Msr.Lstar, 0x77));
        Assert.Equal(1, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_MSRS, get));
        Assert.Equal(0UL, Data(get, 0));
        Assert.Equal(0UL, Data(get, 1));
        Assert.Equal(0x77UL, Data(get, 2));

        var set = Msrs((X86Msr.Star, 0x11), (Unknown, 0), (X86Msr.Lstar, 0x22));
        Assert.Equal(1, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_MSRS, set));
        Assert.Equal(0x11UL, vcpu.GetMsr(X86Msr.Star));
        Assert.Equal(0UL, vcpu.GetMsr(X86Msr.Lstar));

        Assert.Equal(0, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_MSRS, Msrs()));
        var many = Enumerable.Repeat((X86Msr.Star, 0UL), 255).ToArray();
        Assert.Equal(255, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_MSRS, Msrs(many)));
        Assert.Equal(255, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_MSRS, Msrs(many)));
        var tooMany = Msrs([.. many, (X86Msr.Star, 0UL)]);
        CaseContext.AssertErrno(Errno.E2BIG, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_MSRS, tooMany), "256 MSRs");
        CaseContext.AssertErrno(Errno.E2BIG, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_MSRS, tooMany), "256 MSRs");
        // The header alone with a huge nmsrs: E2BIG before the entries are copied.
        var header = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0x7fff_ffff);
        CaseContext.AssertErrno(Errno.E2BIG, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_MSRS, header), "nmsrs 0x7fffffff");
        // pad and reserved are not checked.
        var padded = Msrs((X86Msr.Star, 0));
        BinaryPrimitives.WriteUInt32LittleEndian(padded.AsSpan(4), 5);
        BinaryPrimitives.WriteUInt32LittleEndian(padded.AsSpan(12), 7);
        Assert.Equal(1, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_MSRS, padded));
    }

    [ConformanceCase("x86.c reset values (kvm_vcpu_reset, kvm_lapic / APIC base): STAR..SYSENTER 0, PAT MSR_IA32_CR_PAT_DEFAULT, APIC base 0xfee00900 (BSP), MISC_ENABLE PEBS|BTS_UNAVAIL")]
    public static void msr_reset_values(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        foreach (uint msr in new[] { X86Msr.Efer, X86Msr.Star, X86Msr.Lstar, X86Msr.Cstar, X86Msr.SyscallMask, X86Msr.FsBase,
                     X86Msr.GsBase, X86Msr.KernelGsBase, X86Msr.SysenterCs, X86Msr.SysenterEsp, X86Msr.SysenterEip, X86Msr.TscAux })
            Assert.True(vcpu.GetMsr(msr) == 0, $"{X86Msr.NameOf(msr)} = 0x{vcpu.GetMsr(msr):X}");
        Assert.Equal(0x0007_0406_0007_0406UL, vcpu.GetMsr(X86Msr.Pat));
        Assert.Equal(0xfee0_0900UL, vcpu.GetMsr(X86Msr.ApicBase));
        ulong misc = MiscEnableAtCreation(ctx);
        Assert.Equal(misc, vcpu.GetMsr(X86Msr.MiscEnable));
        using var ap = vm.CreateVcpu(1);
        Assert.Equal(0xfee0_0800UL, ap.GetMsr(X86Msr.ApicBase));
        // An unknown MSR cannot be read; an advertised feature MSR reads as 0 and takes only 0 (kvm_do_msr_access).
        Assert.Throws<MsrAccessException>(() => vcpu.GetMsr(Unknown));
        Assert.Throws<MsrAccessException>(() => vcpu.SetMsr(Unknown, 0));
        Assert.Equal(0UL, vcpu.GetMsr(ArchCapabilities));
        vcpu.SetMsr(ArchCapabilities, 0);
        Assert.Throws<MsrAccessException>(() => vcpu.SetMsr(ArchCapabilities, 1));
    }

    [ConformanceCase("x86.c host-initiated writes: set_efer reserved bits and LMA, __kvm_set_msr canonical checks and SYSENTER canonicalization, TSC_AUX 32 bits, kvm_pat_valid, kvm_apic_set_base, MISC_ENABLE")]
    public static void host_initiated_msr_values(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        void Accepts(uint msr, ulong value, ulong readBack)
        {
            vcpu.SetMsr(msr, value);
            Assert.True(vcpu.GetMsr(msr) == readBack, $"{X86Msr.NameOf(msr)} written 0x{value:X} reads 0x{vcpu.GetMsr(msr):X}, expected 0x{readBack:X}");
        }
        void Refuses(uint msr, ulong value)
        {
            ulong before = vcpu.GetMsr(msr);
            var e = Assert.Throws<MsrAccessException>(() => vcpu.SetMsr(msr, value));
            Assert.Equal(msr, e.Index);
            Assert.Equal(value, e.Value);
            Assert.Equal(before, vcpu.GetMsr(msr));
        }

        // set_efer: SCE, LME, NX are writable by the host without CPUID; LMA is kept from the current state.
        Accepts(X86Msr.Efer, 0x1, 0x1);
        Accepts(X86Msr.Efer, 0x100, 0x100);
        Accepts(X86Msr.Efer, 0x800, 0x800);
        Accepts(X86Msr.Efer, 0x500, 0x100);
        Accepts(X86Msr.Efer, 0, 0);
        Refuses(X86Msr.Efer, 0x2);
        Refuses(X86Msr.Efer, 0x1000);
        Refuses(X86Msr.Efer, 1UL << 20);

        Accepts(X86Msr.Star, 0x0023_0010_0000_0000, 0x0023_0010_0000_0000);
        Accepts(X86Msr.SyscallMask, ulong.MaxValue, ulong.MaxValue);
        foreach (uint msr in new[] { X86Msr.Lstar, X86Msr.Cstar, X86Msr.FsBase, X86Msr.GsBase, X86Msr.KernelGsBase })
        {
            Accepts(msr, 0xffff_8000_0000_1000, 0xffff_8000_0000_1000);
            Accepts(msr, 0x0000_7fff_ffff_f000, 0x0000_7fff_ffff_f000);
            Refuses(msr, 0x0000_8000_0000_0000);
            Refuses(msr, 0x8000_0000_0000_0000);
        }
        Accepts(X86Msr.SysenterCs, ulong.MaxValue, ulong.MaxValue);
        Accepts(X86Msr.SysenterEsp, 0x8000_0000_0000_0000, 0);
        Accepts(X86Msr.SysenterEip, 0x0000_8000_0000_0fff, 0xffff_8000_0000_0fff);
        Accepts(X86Msr.TscAux, 0xffff_ffff, 0xffff_ffff);
        Refuses(X86Msr.TscAux, 1UL << 32);

        Accepts(X86Msr.Pat, 0x0007_0406_0007_0406, 0x0007_0406_0007_0406);
        Accepts(X86Msr.Pat, 0x0706_0504_0100_0706, 0x0706_0504_0100_0706);
        foreach (ulong bad in new ulong[] { 0x0202_0202_0202_0202, 0x8, 0x3 })
        {
            if (HostDeviations.KvmPvmPatNotValidated(ctx.Target.IsReal)) Accepts(X86Msr.Pat, bad, bad);
            else Refuses(X86Msr.Pat, bad);
        }

        // kvm_apic_set_base without an irqchip: reserved bits and x2APIC (not in an empty CPUID) are refused.
        Accepts(X86Msr.ApicBase, 0xfec0_0900, 0xfec0_0900);
        Accepts(X86Msr.ApicBase, 0xfee0_0000, 0xfee0_0000);
        Accepts(X86Msr.ApicBase, 0x1_fee0_0900, 0x1_fee0_0900);
        Refuses(X86Msr.ApicBase, 0xfee0_0d00);
        Refuses(X86Msr.ApicBase, 0xfee0_0901);

        // MISC_ENABLE: the host may write anything (the PMU read-only bits are a guest rule).
        Accepts(X86Msr.MiscEnable, 0, 0);
        Accepts(X86Msr.MiscEnable, ulong.MaxValue, ulong.MaxValue);

        // TSC: writable; two reads in a row do not go backwards.
        vcpu.SetMsr(X86Msr.Tsc, 0x1000);
        ulong t1 = vcpu.GetMsr(X86Msr.Tsc), t2 = vcpu.GetMsr(X86Msr.Tsc);
        Assert.True(t2 >= t1, $"TSC went from 0x{t1:X} to 0x{t2:X}");
        if (!HostDeviations.KvmPvmTscWriteIgnored(ctx.Target.IsReal))
            Assert.True(t1 >= 0x1000 && t1 < 0x1000 + (1UL << 40), $"TSC after writing 0x1000 reads 0x{t1:X}");
    }

    [ConformanceCase("x86.c: EFER, FS_BASE, GS_BASE and APIC_BASE are one state with KVM_GET/SET_SREGS (efer, fs.base, gs.base, apic_base)")]
    public static void msrs_and_sregs_share_state(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetMsr(X86Msr.FsBase, 0xabc000);
        vcpu.SetMsr(X86Msr.GsBase, 0xdef000);
        vcpu.SetMsr(X86Msr.Efer, 0x801);
        vcpu.SetMsr(X86Msr.ApicBase, 0xfee0_0800);
        var s = vcpu.GetSregs();
        Assert.Equal(0xabc000UL, s.fs.@base);
        Assert.Equal(0xdef000UL, s.gs.@base);
        Assert.Equal(0x801UL, s.efer);
        Assert.Equal(0xfee0_0800UL, s.apic_base);

        s.fs.@base = 0x111000;
        s.gs.@base = 0x222000;
        s.efer = 0x1;
        s.apic_base = 0xfee0_0900;
        vcpu.SetSregs(s);
        Span<MsrEntry> read = [new(X86Msr.FsBase, 0), new(X86Msr.GsBase, 0), new(X86Msr.Efer, 0), new(X86Msr.ApicBase, 0)];
        Assert.Equal(4, vcpu.GetMsrs(read));
        Assert.Equal([0x111000UL, 0x222000UL, 0x1UL, 0xfee0_0900UL], read.ToArray().Select(e => e.Value));

        // In long mode (KVM_SET_SREGS LME|LMA), a host write keeps LMA whatever it asks for (set_efer).
        s.efer = 0x500;
        s.cr0 |= 0x8000_0001;
        s.cr4 |= 0x20;
        s.cs.l = 1;
        vcpu.SetSregs(s);
        vcpu.SetMsr(X86Msr.Efer, 0);
        Assert.Equal(0x400UL, vcpu.GetMsr(X86Msr.Efer));
    }

    [ConformanceCase("x86.c kvm_emulate_rdmsr/kvm_emulate_wrmsr: guest WRMSR/RDMSR share state with KVM_GET_MSRS/SREGS; unknown MSR, non-canonical base, TSC_AUX without CPUID, PMU read-only MISC_ENABLE bits are #GP(0)")]
    public static void guest_rdmsr_wrmsr(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            void Wr(uint msr, ulong value) => MsrAsm.Wrmsr(a, msr, value);
            Wr(X86Msr.Star, 0x0023_0010_0000_0000);
            Wr(X86Msr.Lstar, 0xffff_ffff_8100_0000);
            Wr(X86Msr.FsBase, 0x1234_5000);
            Wr(X86Msr.KernelGsBase, 0x1_0000_5000);
            Wr(X86Msr.SysenterCs, 0x10);
            Wr(X86Msr.Pat, 0x0007_0106_0007_0406);
            a.mov(ecx, unchecked((int)X86Msr.Lstar));
            a.rdmsr();
            a.mov(r8, rax);
            a.mov(r9, rdx);
            a.mov(ecx, unchecked((int)X86Msr.Efer));
            a.rdmsr();
            a.mov(r10, rax);
            // Each of these is #GP(0); the handler skips the 2-byte instruction.
            a.mov(eax, 0x5a5a);
            a.mov(ecx, unchecked((int)Unknown));
            a.rdmsr();
            a.mov(r11, rax); // unchanged by the faulting RDMSR
            Wr(Unknown, 0);
            Wr(X86Msr.FsBase, 0x0000_8000_0000_0000);
            a.mov(ecx, unchecked((int)X86Msr.TscAux));
            a.rdmsr();
            // Flip BTS_UNAVAIL (bit 11, one of MSR_IA32_MISC_ENABLE_PMU_RO_MASK) of the current value.
            a.mov(ecx, unchecked((int)X86Msr.MiscEnable));
            a.rdmsr();
            a.xor(eax, 0x800);
            a.wrmsr();
            a.hlt();
        }, Resuming);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        var d = g.Deliveries;
        // The last #GP is the MISC_ENABLE PMU read-only bit, which this host does not refuse.
        int expected = HostDeviations.KvmPvmMiscEnableDiffers(ctx.Target.IsReal) ? 4 : 5;
        Assert.True(d.Count == expected, string.Join(",", d.Select(x => $"{x.Vector}@0x{x.Rip:X}")));
        Assert.All(d, x => Assert.Equal((13UL, (ulong?)0), (x.Vector, x.ErrorCode)));
        var r = g.Vcpu.GetRegs();
        Assert.Equal(0x8100_0000UL, r.r8);
        Assert.Equal(0xffff_ffffUL, r.r9);
        Assert.Equal(g.Vcpu.GetSregs().efer, r.r10);
        Assert.Equal(0x5a5aUL, r.r11);
        var v = g.Vcpu;
        Assert.Equal(0x0023_0010_0000_0000UL, v.GetMsr(X86Msr.Star));
        Assert.Equal(0xffff_ffff_8100_0000UL, v.GetMsr(X86Msr.Lstar));
        Assert.Equal(0x1234_5000UL, v.GetMsr(X86Msr.FsBase));
        Assert.Equal(0x1234_5000UL, v.GetSregs().fs.@base);
        Assert.Equal(0x1_0000_5000UL, v.GetMsr(X86Msr.KernelGsBase));
        Assert.Equal(0x10UL, v.GetMsr(X86Msr.SysenterCs));
        Assert.Equal(0x0007_0106_0007_0406UL, v.GetMsr(X86Msr.Pat));
        if (!HostDeviations.KvmPvmMiscEnableDiffers(ctx.Target.IsReal)) Assert.Equal(MiscEnableAtCreation(ctx), v.GetMsr(X86Msr.MiscEnable));
    }

    // A new vCPU's MSR_IA32_MISC_ENABLE: upstream kvm_vcpu_reset's PEBS_UNAVAIL | BTS_UNAVAIL (0x1800), or kvm_pvm's
    // FAST_STRING (0x1) — on this host's real kernel, and on an emulated one configured like it
    // (EmulatorConfig.X86MiscEnableAtCreation).
    private static ulong MiscEnableAtCreation(CaseContext ctx) =>
        ctx.Kernel is EmulatedKernel emulated ? emulated.Config.X86MiscEnableAtCreation
        : HostDeviations.KvmPvmMiscEnableDiffers(ctx.Target.IsReal) ? 0x1UL : 0x1800UL;

    /// <summary>struct kvm_msrs (nmsrs, pad 0) followed by the entries, as raw bytes.</summary>
    private static byte[] Msrs(params (uint Index, ulong Data)[] entries)
    {
        var b = new byte[8 + 16 * entries.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)entries.Length);
        for (int i = 0; i < entries.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8 + 16 * i), entries[i].Index);
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16 + 16 * i), entries[i].Data);
        }
        return b;
    }

    private static ulong Data(byte[] msrs, int i) => BinaryPrimitives.ReadUInt64LittleEndian(msrs.AsSpan(16 + 16 * i));
}
