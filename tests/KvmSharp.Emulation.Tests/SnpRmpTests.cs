// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Emulation.Tests.SnpTestSupport;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The emulated SEV-SNP Reverse Map Table (Arch/X86/SnpRmp.cs) and PVALIDATE (X86/Emulate/X86Emulator.Pvalidate.cs):
/// sev_gmem_prepare makes a page assigned but not validated at its first private fault, SNP_LAUNCH_UPDATE leaves
/// pages assigned and validated, sev_gmem_invalidate (punch-hole, in-place conversion to shared) gives them back to
/// the hypervisor; PVALIDATE validates and rescinds (EAX = 0 / PVALIDATE_FAIL_INPUT 1 / PVALIDATE_FAIL_SIZEMISMATCH 6,
/// CF = 1 when nothing changed), #GP outside an SNP guest, #UD on a host without SNP; a private access to an
/// unvalidated page is #VC 0x404. Emulator only: no kernel on this machine has SNP.
/// <see cref="SevEsGuest"/> SNP layout: GPA 0 private but not launched, 0x1000–0x8FFF launched, 0x9000 up shared.
/// </summary>
public sealed class SnpRmpTests
{
    private const ulong NoUpdate = 0x100;

    [Fact]
    public void Pvalidate_validates_rescinds_and_reports_no_update_size_mismatch_and_bad_input()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            a.mov(rbx, ReportLinear);
            Pvalidate(a, 0, 0, 1, 0);          // page 0: assigned by the fault-in, not validated → validated
            Pvalidate(a, 0, 0, 1, 1);          // again: no update (CF = 1)
            a.mov(rax, __qword_ptr[0]);        // a private access works once validated
            a.mov(__qword_ptr[rbx + 2 * 8], rax);
            Pvalidate(a, 0, 1, 1, 3);          // the 2 MiB form on a 4 KiB entry: FAIL_SIZEMISMATCH
            Pvalidate(a, 0, 2, 1, 4);          // page size 2: FAIL_INPUT
            Pvalidate(a, 0x800, 0, 1, 5);      // unaligned: FAIL_INPUT
            Pvalidate(a, 0x8000, 0, 1, 6);     // a launched page is validated already
            Pvalidate(a, 0, 0, 0, 7);          // rescind
            Pvalidate(a, 0, 0, 0, 8);          // again: no update
            SevEsGuest.Terminate(a, 7);
        });
        AssertTerminated(g, 7);
        Assert.Equal(0UL, g.ReportQword(0));
        Assert.Equal(NoUpdate, g.ReportQword(1));
        Assert.Equal((ulong)SnpRmp.PvalidateFailSizeMismatch, g.ReportQword(3));
        Assert.Equal((ulong)SnpRmp.PvalidateFailInput, g.ReportQword(4));
        Assert.Equal((ulong)SnpRmp.PvalidateFailInput, g.ReportQword(5));
        Assert.Equal(NoUpdate, g.ReportQword(6));
        Assert.Equal(0UL, g.ReportQword(7));
        Assert.Equal(NoUpdate, g.ReportQword(8));
        Assert.Equal(new RmpEntry(Assigned: true, Validated: false), At(g, 0));
    }

    [Fact]
    public void Launch_update_leaves_pages_assigned_and_validated_and_launch_finish_marks_the_vmsa()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a => SevEsGuest.Terminate(a, 1));
        for (ulong gpa = 0x1000; gpa < SevEsGuest.Ghcb; gpa += 0x1000) Assert.Equal(new RmpEntry(Assigned: true, Validated: true), At(g, gpa));
        // Page 0 was made private but not launched, the GHCB page is shared: both hypervisor-owned.
        Assert.Equal(default, At(g, 0));
        Assert.Equal(default, At(g, SevEsGuest.Ghcb));
        Assert.Equal(new RmpEntry(Assigned: true, Validated: true, Vmsa: true), SnpRmp.VmsaEntry(KvmOf(g).Vcpus[0]));
    }

    [Fact]
    public void A_private_access_to_an_assigned_unvalidated_page_is_vc_0x404()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            a.mov(rax, __qword_ptr[0]);
            SevEsGuest.Terminate(a, 2);
        });
        AssertTerminated(g, 0x29);             // the #VC handler (RecordAndTerminate)
        Assert.Equal(0x404UL, g.ReportQword(0));
        Assert.Equal(SevEsGuest.Code, g.ReportQword(1));
        Assert.Equal(new RmpEntry(Assigned: true, Validated: false), At(g, 0));
    }

    [Fact]
    public void Punching_a_validated_page_out_makes_its_rmp_entry_shared()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            a.mov(rbx, ReportLinear);
            Pvalidate(a, 0, 0, 1, 0);
            SevEsGuest.Terminate(a, 3);
        });
        AssertTerminated(g, 3);
        Assert.Equal(0UL, g.ReportQword(0));
        Assert.Equal(new RmpEntry(Assigned: true, Validated: true), At(g, 0));
        g.Gmem!.PunchHole(0, 0x2000);
        Assert.Equal(default, At(g, 0));
        Assert.Equal(default, At(g, 0x1000));
        Assert.Equal(new RmpEntry(Assigned: true, Validated: true), At(g, 0x2000));
    }

    [Fact]
    public void Pvalidate_in_an_sev_es_guest_is_gp()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            a.mov(eax, 0);
            a.xor(ecx, ecx);
            a.mov(edx, 1);
            a.pvalidate();
            SevEsGuest.Terminate(a, 4);
        }, patchImage: image => PatchHandler(image, 13, asm =>
        {
            // Vector 13 → a handler that records the error code and RIP like the #VC one, then terminates with 0x0D.
            asm.mov(rax, __qword_ptr[rsp]);
            asm.mov(rbx, ReportLinear);
            asm.mov(__qword_ptr[rbx], rax);
            asm.mov(rax, __qword_ptr[rsp + 8]);
            asm.mov(__qword_ptr[rbx + 8], rax);
            SevEsGuest.Terminate(asm, 0x0D);
        }));
        AssertTerminated(g, 0x0D);
        Assert.Equal(0UL, g.ReportQword(0));
        Assert.Equal(SevEsGuest.Code + 12, g.ReportQword(1)); // mov eax (5) + xor ecx (2) + mov edx (5): the PVALIDATE
    }

    /// <summary>
    /// A non-confidential VM: PVALIDATE is #GP(0) on a host whose CPU has SNP (the full x86_64 preset offers the SNP VM
    /// type) and #UD on one without (the "like this host" preset: no SEV). The guest's IDT sends #UD and #GP to stubs
    /// that OUT their vector to port 0x10.
    /// </summary>
    [Theory]
    [InlineData(true, 13)]
    [InlineData(false, 6)]
    public void Pvalidate_outside_an_snp_guest_is_gp_on_an_snp_host_and_ud_on_another(bool snpHost, int vector)
    {
        Assert.Equal((byte)vector, FaultVectorInPlainVm(snpHost, a => a.pvalidate()));
    }

    /// <summary>
    /// An SNP micro-VM (in-place conversion): a launched page is validated; the runtime's conversion to shared hands it
    /// back to the hypervisor (sev_gmem_invalidate on the in-place conversion), and its conversion to private makes it
    /// assigned again at the runtime's PVALIDATE, which validates it.
    /// </summary>
    [Fact]
    public void Conversion_to_shared_clears_the_rmp_entry_and_the_runtime_validates_the_page_made_private()
    {
        const ulong Page = 0x1F_0000;
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using var kvm = KvmSharp.Kvm.Open(k, proposals: k.Config.Proposals);
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), map = p.Export("map");
        p.Place(ref start);
        a.xor(eax, eax);
        a.ret();
        p.Place(ref map);
        a.mov(rax, Layout.SnpMapGpaRange);
        a.jmp(rax);
        using var vm = MicroVm.Create(p.Build(start), new MicroVmOptions { Kvm = kvm, VmType = VmType.Snp, Timeout = TimeSpan.FromSeconds(20) });
        Assert.True(vm.Run().IsSuccess);
        var emulated = k.InvariantView.Vms.Single();
        Assert.Equal(new RmpEntry(Assigned: true, Validated: true), SnpRmp.AtGfn(emulated, Page >> 12));
        var r = vm.Call("map", Page, 1, KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED);
        Assert.True(r.IsSuccess && r.Value == 0, r.ToString());
        Assert.Equal(default(RmpEntry), SnpRmp.AtGfn(emulated, Page >> 12));
        r = vm.Call("map", Page, 1, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED);
        Assert.True(r.IsSuccess && r.Value == 0, r.ToString());
        Assert.Equal(new RmpEntry(Assigned: true, Validated: true), SnpRmp.AtGfn(emulated, Page >> 12));
    }
}
