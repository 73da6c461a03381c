// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Page validation in an SEV-SNP micro-VM (the emulated kernel's RMP, Arch/X86/SnpRmp.cs): the runtime's page-state
/// change validates the pages it made private and rescinds the ones it makes shared (Arch/X86_64/SnpPageState,
/// as Linux's set_pages_state), so a page the guest made private again reads back; a private page whose validation
/// the guest rescinded raises #VC 0x404 (page not validated) on its next access. Emulated kernel with in-place
/// conversion only: no kernel on this machine has SNP.
/// </summary>
public sealed class SnpValidationTests
{
    private const ulong Page = SnpMicroVm.ConvertiblePage;

    private const int VcPageNotValidated = 0x404;

    private static MicroVm CreateSnp(TestKernel k) => SnpMicroVm.Create(k, Guest());

    /// <summary>
    /// <c>map(gpa, pages, attributes)</c>: the runtime's page-state change. <c>peek(gpa)</c>: the guest's own load.
    /// <c>pval(gpa, validate)</c>: PVALIDATE of the 4 KiB page at gpa (identity-mapped); returns EAX | CF &lt;&lt; 8.
    /// </summary>
    private static GuestImage Guest()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), map = p.Export("map"), peek = p.Export("peek"), pval = p.Export("pval");
        p.Place(ref start);
        a.xor(eax, eax);
        a.ret();
        p.Place(ref map);
        a.mov(rax, Layout.SnpMapGpaRange);
        a.jmp(rax);
        p.Place(ref peek);
        a.mov(rax, __qword_ptr[rdi]);
        a.ret();
        p.Place(ref pval);
        a.mov(edx, esi);
        a.mov(rax, rdi);
        a.xor(ecx, ecx);
        a.pvalidate();
        a.setc(cl);
        a.shl(ecx, 8);
        a.or(eax, ecx);
        a.ret();
        return p.Build(start);
    }

    private static ulong Call(MicroVm vm, string name, params ReadOnlySpan<ulong> args) => GuestRun.Value(vm, name, args);

    [Fact]
    public void A_launched_page_is_validated_and_a_page_made_private_again_is_validated_by_the_runtime()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = CreateSnp(k);
        Assert.True(vm.Run().IsSuccess);
        // SNP_LAUNCH_UPDATE left the page validated: validating it again changes nothing (rc 0, CF = 1).
        Assert.Equal(0x100UL, Call(vm, "pval", Page, 1));
        Assert.Equal(0UL, Call(vm, "map", Page, 1, KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED));
        Assert.Equal(0UL, Call(vm, "map", Page, 1, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED));
        // The runtime's PVALIDATE after the conversion: already validated, and the page reads.
        Assert.Equal(0x100UL, Call(vm, "pval", Page, 1));
        Call(vm, "peek", Page);
        Assert.False(vm.IsFaulted);
    }

    [Fact]
    public void A_private_page_whose_validation_the_guest_rescinded_is_vc_0x404_until_it_is_validated_again()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = CreateSnp(k);
        Assert.True(vm.Run().IsSuccess);
        Assert.Equal(0UL, Call(vm, "pval", Page, 0));      // rescinded: rc 0, CF = 0
        Assert.Equal(0x100UL, Call(vm, "pval", Page, 0));  // again: no update (Linux's PVALIDATE_FAIL_NOUPDATE)
        var r = vm.Call("peek", Page);
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(SnpRuntime.VmmCommunicationException, r.Exception!.Vector);
        Assert.Equal((ulong)VcPageNotValidated, r.Exception.ErrorCode);
        Assert.InRange(r.Exception.Rip, vm.Image.Resolve("peek"), vm.Image.Resolve("peek") + 8);
    }

    [Fact]
    public void Making_a_rescinded_page_shared_and_private_again_validates_it()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = CreateSnp(k);
        Assert.True(vm.Run().IsSuccess);
        Assert.Equal(0UL, Call(vm, "pval", Page + Layout.PageSize, 0));
        // The runtime's own rescind before going shared finds it unvalidated already (CF = 1, accepted).
        Assert.Equal(0UL, Call(vm, "map", Page + Layout.PageSize, 1, KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED));
        Assert.Equal(0UL, Call(vm, "map", Page + Layout.PageSize, 1, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED));
        Call(vm, "peek", Page + Layout.PageSize);
        Assert.Equal(0x100UL, Call(vm, "pval", Page + Layout.PageSize, 1));
    }
}
