// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The TDX module's own TDCALL leaves as a TD sees them: TDG.VP.VEINFO.GET after the #VE the module injects (HLT,
/// IN/OUT, an access to a PENDING page), TDG.VP.INFO, and TDG.MEM.PAGE.ACCEPT of the pages KVM maps PENDING after
/// KVM_TDX_FINALIZE_VM (vmx/tdx.c tdx_sept_set_private_spte → TDH.MEM.PAGE.AUG), with KVM's side of a pending access
/// under SEPT_VE_DISABLE (tdx_handle_ept_violation: kvm_vm_dead). Sources: intel/tdx-module
/// src/td_dispatcher/vm_exits/tdg_vp_veinfo_get.c, tdg_vp_info.c, tdg_mem_page_accept.c; Linux
/// arch/x86/coco/tdx/tdx.c (tdx_get_ve_info, tdx_parse_tdinfo, try_accept_one). This host has no TDX: the cases run on
/// the emulator's X86Coco profile.
/// </summary>
public static class TdxModuleCalls
{
    private const string Module = "TDX module ";
    private const ulong TdxNoValidVeInfo = 0xC000_0704_0000_0000, TdxOperandInvalidRcx = 0xC000_0100_0000_0001;
    private const ulong TdxPageAlreadyAccepted = 0x0000_0B0A_0000_0000, TdxPageSizeMismatch2M = 0xC000_0B0B_0000_0001;

    private static TdGuest Td(Kvm kvm, Action<Assembler> program, ulong attributes = 0)
    {
        if (!kvm.SupportsGuestMemfd) CaseContext.Skip("a TD's memory is guest_memfd, which this kernel lacks (KVM_CAP_GUEST_MEMFD = 0)");
        return TdGuest.Create(kvm, program, attributes);
    }

    private static ulong[] Reports(TdGuest td, int n) => [.. Enumerable.Range(0, n).Select(_ => td.RunToReport())];

    private static void Spin(Assembler a)
    {
        var l = a.CreateLabel();
        a.Label(ref l);
        a.jmp(l);
    }

    [ConformanceCase(Module + "tdg_vp_veinfo_get.c / Linux tdx_get_ve_info: after a #VE for OUT, IN and HLT, VEINFO.GET returns RCX = exit reason (30, 12), RDX = the SDM exit qualification (size - 1, IN, immediate, port 31:16), R8 = GLA, R9 = GPA, R10 = instruction length and clears VALID; without valid info TDX_NO_VALID_VE_INFO with the outputs zeroed",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void veinfo_get_returns_what_the_ve_stood_for_once(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            var ve = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            a.@out(0x80, al);
            a.mov(dx, 0x3f8);
            a.@in(ax, dx);
            a.hlt();
            foreach (var r in new[] { rcx, rdx, r8, r9, r10 }) a.mov(r, -1);
            a.mov(eax, TdGuest.TdgVpVeinfoGet);
            a.tdcall();
            foreach (var r in new[] { rax, rcx, rdx, r8, r9, r10 }) TdGuest.Report(a, r);
            Spin(a);
            // The #VE handler: VEINFO.GET, report, skip the instruction (R10[31:0] bytes), IRETQ.
            a.Label(ref ve);
            a.mov(eax, TdGuest.TdgVpVeinfoGet);
            a.tdcall();
            foreach (var r in new[] { rax, rcx, rdx, r8, r9, r10 }) TdGuest.Report(a, r);
            a.mov(r11d, r10d);
            a.add(__qword_ptr[rsp], r11);
            a.iretq();
        });
        Assert.Equal([0UL, 30UL, 0x0080_0040UL, 0UL, 0UL, 2UL], Reports(td, 6)); // OUT imm8, AL
        Assert.Equal([0UL, 30UL, 0x03f8_0009UL, 0UL, 0UL, 2UL], Reports(td, 6)); // IN AX, DX (66 ED)
        Assert.Equal([0UL, 12UL, 0UL, 0UL, 0UL, 1UL], Reports(td, 6));           // HLT
        Assert.Equal([TdxNoValidVeInfo, 0UL, 0UL, 0UL, 0UL, 0UL], Reports(td, 6));
    }

    [ConformanceCase(Module + "#VE injection / Linux tdx_get_ve_info (\"any #VE that occurs while the valid flag is set will lead to #DF\"): a second #VE before VEINFO.GET is a #DF with error code 0",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void a_ve_while_ve_info_is_valid_is_a_double_fault(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            var ve = a.CreateLabel();
            var df = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            TdGuest.InstallHandler(a, 8, df);
            a.@out(0x80, al);
            a.mov(r15, 1);
            TdGuest.Report(a, r15);
            a.@out(0x80, al);
            Spin(a);
            a.Label(ref ve);
            a.add(__qword_ptr[rsp], 2); // skip the OUT without reading the info
            a.iretq();
            a.Label(ref df);
            a.pop(r14);
            a.mov(r15, 0xdf);
            TdGuest.Report(a, r15);
            TdGuest.Report(a, r14);
            Spin(a);
        });
        Assert.Equal([1UL, 0xdfUL, 0UL], Reports(td, 3));
    }

    [ConformanceCase(Module + "tdg_vp_info.c / Linux tdx_parse_tdinfo: RCX = GPAW (48 for CPUID 0x80000008 GPAW 48), RDX = the TD ATTRIBUTES of KVM_TDX_INIT_VM, R8 = NUM_VCPUS | MAX_VCPUS << 32, R9 = VCPU_INDEX, R10 bit 0 = TDG.SYS.RD available, R11 = 0",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void vp_info_reports_gpaw_attributes_and_the_vcpu(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (ulong attributes in new[] { 0UL, TdGuest.AttrSeptVeDisable })
        {
            using var td = Td(kvm, a =>
            {
                a.mov(eax, TdGuest.TdgVpInfo);
                a.tdcall();
                foreach (var r in new[] { rax, rcx, rdx, r9, r10, r11 }) TdGuest.Report(a, r);
                a.mov(eax, r8d);
                TdGuest.Report(a, rax);
                a.shr(r8, 32);
                TdGuest.Report(a, r8);
            }, attributes);
            var got = Reports(td, 8);
            Assert.Equal([0UL, 48UL, attributes, 0UL, 1UL, 0UL, 1UL], got[..7]);
            // MAX_VCPUS: kvm->max_vcpus, which tdx_vm_init limits to the present CPUs.
            Assert.InRange(got[7], 1UL, (ulong)Math.Max(1, kvm.CheckExtension(KvmCaps.KVM_CAP_MAX_VCPUS)));
        }
    }

    [ConformanceCase(Module + "tdg_mem_page_accept.c: a page KVM maps after FINALIZE_VM (TDH.MEM.PAGE.AUG) is accepted once (zeroed, TDX_SUCCESS; then TDX_PAGE_ALREADY_ACCEPTED); a page KVM_TDX_INIT_MEM_REGION added is already accepted; bad level, reserved bits, a shared or too wide GPA are TDX_OPERAND_INVALID(RCX); 2 MiB over 4 KiB leaves is TDX_PAGE_SIZE_MISMATCH",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void accept_takes_a_pending_page_once(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        ulong[] rcxValues =
        [
            TdGuest.UnacceptedPage, TdGuest.UnacceptedPage, TdGuest.Code, TdGuest.UnacceptedPage | 2, TdGuest.UnacceptedPage | 0x10,
            TdGuest.UnacceptedPage | TdGuest.SharedBit, 1UL << 48, 0xffe0_0000UL | 1,
        ];
        using var td = Td(kvm, a =>
        {
            foreach (ulong v in rcxValues)
            {
                a.mov(rcx, v);
                a.mov(eax, TdGuest.TdgMemPageAccept);
                a.tdcall();
                TdGuest.Report(a, rax);
            }
            a.mov(rbx, TdGuest.UnacceptedPage + 0x100);
            a.mov(rax, __qword_ptr[rbx]);
            TdGuest.Report(a, rax);
        });
        Assert.Equal([0UL, TdxPageAlreadyAccepted, TdxPageAlreadyAccepted, TdxOperandInvalidRcx, TdxOperandInvalidRcx, TdxOperandInvalidRcx, TdxOperandInvalidRcx, TdxPageSizeMismatch2M, 0UL],
            Reports(td, rcxValues.Length + 1));
    }

    [ConformanceCase(Module + "pending S-EPT violation without SEPT_VE_DISABLE: a #VE with exit reason 48, the GLA and GPA of the access; after ACCEPT the access goes on. KVM_SET_MEMORY_ATTRIBUTES to shared and back removes the page (tdx_sept_remove_private_spte): PENDING again",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void a_pending_page_access_is_a_ve_until_accepted(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var td = Td(kvm, a =>
        {
            var ve = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            a.mov(rbx, TdGuest.UnacceptedPage);
            a.mov(rax, __qword_ptr[rbx + 0x40]);
            TdGuest.Report(a, rax);
            a.mov(rax, __qword_ptr[rbx + 0x40]);
            TdGuest.Report(a, rax);
            Spin(a);
            // #VE: report the exit reason and GPA, accept the page, retry the access.
            a.Label(ref ve);
            a.mov(eax, TdGuest.TdgVpVeinfoGet);
            a.tdcall();
            TdGuest.Report(a, rcx);
            TdGuest.Report(a, r8);
            TdGuest.Report(a, r9);
            a.mov(rcx, r9);
            a.and(rcx, -4096);
            a.mov(eax, TdGuest.TdgMemPageAccept);
            a.tdcall();
            a.mov(rbx, TdGuest.UnacceptedPage);
            a.iretq();
        });
        ulong at = TdGuest.UnacceptedPage + 0x40;
        Assert.Equal([48UL, at, at, 0UL], Reports(td, 4));
        td.Vm.SetMemoryAttributes(TdGuest.UnacceptedPage, 0x1000, 0);
        td.Vm.SetMemoryAttributes(TdGuest.UnacceptedPage, 0x1000, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        Assert.Equal([48UL, at, at, 0UL], Reports(td, 4));
    }

    [ConformanceCase("arch/x86/kvm/vmx/tdx.c tdx_handle_ept_violation (6.18): with SEPT_VE_DISABLE a TD's access to a PENDING page exits to KVM, \"Guest access before accepting\", kvm_vm_dead: KVM_RUN and every later vCPU and VM ioctl answer EIO",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void a_pending_page_access_with_sept_ve_disable_kills_the_vm(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        // Disposing a dead VM's guest deletes nothing (EIO) and does not throw (MemorySlot.Dispose).
        using var td = Td(kvm, a =>
        {
            a.mov(rbx, TdGuest.UnacceptedPage);
            a.mov(rax, __qword_ptr[rbx]);
            TdGuest.Report(a, rax);
        }, TdGuest.AttrSeptVeDisable);
        foreach (Action call in new Action[] { () => td.Vcpu.Run(), () => td.Vcpu.Run(), () => td.Vm.CheckExtension(KvmCaps.KVM_CAP_USER_MEMORY) })
            Assert.Equal(Errno.EIO, Assert.Throws<KvmException>(call).Errno);
    }
}
