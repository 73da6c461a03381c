// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Emulation.Tests.SnpTestSupport;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The RMP's ASID/GPA and VMPL fields (Arch/X86/SnpRmpVmpl.cs), RMPADJUST (X86/Emulate/X86Emulator.Rmpadjust.cs) and
/// 2 MiB RMP entries with KVM's PSMASH (sev_handle_rmp_fault): rmp_make_private records the ASID and GPA, a private
/// access at another GPA is an RMP #NPF KVM leaves unresolved (the guest makes no progress), RMPADJUST at VMPL0 sets a
/// lower VMPL's mask and the VMSA bit with its FAIL_INPUT / FAIL_PERMISSION / FAIL_SIZEMISMATCH codes and is #UD
/// outside an SNP guest, a 2 MiB PVALIDATE validates a 2 MiB entry of a HugeTLB guest_memfd and a 4 KiB one PSMASHes it.
/// KVM 6.18 runs every vCPU at VMPL0, so the VMPL1–3 masks are checked through the RMP inspection API only.
/// Emulator only: no kernel on this machine has SNP.
/// </summary>
public sealed class SnpRmpVmplTests
{
    private const ulong RmpadjustVmsa = 1UL << 16;

    /// <summary>RMPADJUST(RAX = va, RCX = size, RDX = attrs); report qword <paramref name="index"/> = RAX (RBX = the report).</summary>
    private static void Rmpadjust(Assembler a, ulong va, ulong size, ulong attrs, int index)
    {
        a.mov(rax, va);
        a.mov(rcx, size);
        a.mov(rdx, attrs);
        a.rmpadjust();
        a.mov(__qword_ptr[rbx + index * 8], rax);
    }

    private static RmpOwner OwnerAt(SevEsGuest g, ulong gpa) => SnpRmpVmpl.OwnerAtGfn(KvmOf(g), gpa >> 12)!.Value;

    [Fact]
    public void Launch_update_and_the_first_private_fault_record_the_asid_and_gpa_with_no_lower_vmpl_permissions()
    {
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            a.mov(rbx, ReportLinear);
            Pvalidate(a, 0, 0, 1, 0); // page 0: made private by the fault-in (sev_gmem_prepare)
            SevEsGuest.Terminate(a, 1);
        });
        AssertTerminated(g, 1);
        Assert.Equal(0UL, g.ReportQword(0));
        for (ulong gpa = 0; gpa < SevEsGuest.Ghcb; gpa += 0x1000)
        {
            Assert.Equal(new RmpOwner(Asid: 1, Gpa: gpa, 0, 0, 0), OwnerAt(g, gpa));
            Assert.Equal(SnpRmpVmpl.PermAll, OwnerAt(g, gpa).Permissions(0));
        }
        Assert.Equal(default, OwnerAt(g, SevEsGuest.Ghcb)); // shared: hypervisor-owned
        g.Gmem!.PunchHole(0, 0x1000);                       // sev_gmem_invalidate → rmp_make_shared
        Assert.Equal(default, OwnerAt(g, 0));
        Assert.Equal(new RmpOwner(1, 0x1000, 0, 0, 0), OwnerAt(g, 0x1000));
    }

    /// <summary>sev_asid_new: the lowest free SEV-ES/SNP ASID from 1; a destroyed VM's ASID is free again (sev_asid_free).</summary>
    [Fact]
    public void Snp_vms_get_the_lowest_free_asid()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = KvmSharp.Kvm.Open(k, proposals: k.Config.Proposals);
        var first = kvm.CreateVm(VmType.Snp);
        using var second = kvm.CreateVm(VmType.Snp);
        var vms = k.InvariantView.Vms.ToArray();
        Assert.Equal(1, SnpRmpVmpl.Asid(vms[0]));
        Assert.Equal(2, SnpRmpVmpl.Asid(vms[1]));
        first.Dispose();
        using var third = kvm.CreateVm(VmType.Snp);
        Assert.Equal(1, SnpRmpVmpl.Asid(k.InvariantView.Vms.Single(v => v != vms[1])));
    }

    [Fact]
    public void Rmpadjust_at_vmpl0_sets_a_lower_vmpls_mask_and_the_vmsa_bit_and_reports_bad_input_permission_and_size()
    {
        const ulong Page = 0x3000, Other = 0x1000;
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            a.mov(rbx, ReportLinear);
            Rmpadjust(a, Page, 0, 1 | ((ulong)(SnpRmpVmpl.PermRead | SnpRmpVmpl.PermWrite) << 8), 0);
            Rmpadjust(a, Page, 0, 2 | (0x1FUL << 8), 1);
            Rmpadjust(a, Page, 0, 3 | (0x0FUL << 8) | RmpadjustVmsa, 2);
            Rmpadjust(a, Page, 0, 0 | (0x01UL << 8), 3);         // target VMPL0 = the current one: FAIL_PERMISSION
            Rmpadjust(a, Page, 0, 4, 4);                        // VMPL4: FAIL_INPUT
            Rmpadjust(a, Page, 0, 1 | (0x20UL << 8), 5);        // reserved permission bit: FAIL_INPUT
            Rmpadjust(a, Page, 0, 1 | (1UL << 17), 6);          // reserved RDX bit: FAIL_INPUT
            Rmpadjust(a, Page, 2, 1, 7);                        // page size 2: FAIL_INPUT
            Rmpadjust(a, Other, 1, 1, 8);                       // 2 MiB form, bits 20:12 set: FAIL_INPUT
            Rmpadjust(a, 0, 1, 1, 9);                           // 2 MiB form on a 4 KiB entry: FAIL_SIZEMISMATCH
            Rmpadjust(a, 0, 1, 1 | RmpadjustVmsa, 10);          // a 2 MiB VMSA: FAIL_INPUT
            Rmpadjust(a, Other, 0, 1 | RmpadjustVmsa, 11);      // VMSA set …
            Rmpadjust(a, Other, 0, 1, 12);                      // … and cleared again
            Rmpadjust(a, Other + 0x814, 0, 1 | (0x03UL << 8), 13); // bits 11:0 ignored (OVMF's unaligned gVmpl0Data)
            SevEsGuest.Terminate(a, 2);
        });
        AssertTerminated(g, 2);
        ulong[] expected = [0, 0, 0, 2, 1, 1, 1, 1, 1, 6, 1, 0, 0, 0];
        for (int i = 0; i < expected.Length; i++) Assert.True(expected[i] == g.ReportQword(i), $"RMPADJUST {i}: {g.ReportQword(i)}");
        Assert.Equal(new RmpOwner(1, Page, Vmpl1Perms: 3, Vmpl2Perms: 0x1F, Vmpl3Perms: 0x0F), OwnerAt(g, Page));
        Assert.Equal(new RmpEntry(Assigned: true, Validated: true, Vmsa: true), At(g, Page));
        Assert.Equal(new RmpEntry(Assigned: true, Validated: true), At(g, Other));
        Assert.Equal(new RmpOwner(1, Other, Vmpl1Perms: 3, 0, 0), OwnerAt(g, Other));
    }

    /// <summary>
    /// RMPADJUST outside an SNP guest is #UD: in an SEV-ES guest (IDT vector 6 → a handler that records the RIP and
    /// terminates with 6) and in a plain VM on hosts with and without SNP.
    /// </summary>
    [Fact]
    public void Rmpadjust_in_an_sev_es_guest_is_ud()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            a.xor(eax, eax);
            a.mov(edx, 1);
            a.rmpadjust();
            SevEsGuest.Terminate(a, 4);
        }, patchImage: image => PatchHandler(image, 6, asm =>
        {
            asm.mov(rax, __qword_ptr[rsp]);
            asm.mov(rbx, ReportLinear);
            asm.mov(__qword_ptr[rbx], rax);
            SevEsGuest.Terminate(asm, 6);
        }));
        AssertTerminated(g, 6);
        Assert.Equal(SevEsGuest.Code + 7, g.ReportQword(0)); // xor eax (2) + mov edx (5): the RMPADJUST
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rmpadjust_in_a_plain_vm_is_ud(bool snpHost)
    {
        Assert.Equal((byte)6, FaultVectorInPlainVm(snpHost, a => a.rmpadjust()));
    }

    /// <summary>
    /// A page launched at GPA 0x10000 (rmp_make_private with that GPA), whose memslot is then re-created at 0x11000 over
    /// the same guest_memfd page: the guest's private read at 0x11000 fails the RMP's GPA check, an #NPF KVM's
    /// sev_handle_rmp_fault leaves alone (a 4 KiB entry), so the guest runs the read again and again — KVM_RUN only
    /// ends when interrupted, the instruction after the read never runs, and the entry keeps its GPA.
    /// </summary>
    [Fact]
    public void A_private_access_at_a_gpa_other_than_the_rmp_entrys_never_completes()
    {
        const ulong LaunchedAt = 0x1_0000, MovedTo = 0x1_1000;
        var owned = new List<IDisposable>();
        var source = new PinnedArray<byte>(0x1000, 0x1000);
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            a.mov(rbx, ReportLinear);
            a.mov(__qword_ptr[rbx], 1);
            a.mov(rax, MovedTo);
            a.mov(rax, __qword_ptr[rax]);
            a.mov(__qword_ptr[rbx + 8], 2);
            SevEsGuest.Terminate(a, 3);
        }, snpFinish: launch =>
        {
            var vm = launch.Vm;
            var gmem = vm.CreateGuestMemfd(0x1000);
            var shared = vm.AllocateMemory(0x1000);
            owned.Add(gmem);
            owned.Add(shared);
            var slot = vm.AddPrivateMemorySlot(1, LaunchedAt, 0x1000, shared, gmem);
            vm.SetMemoryAttributes(LaunchedAt, 0x1000, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            launch.Update(LaunchedAt >> 12, (nint)source.Address, 0x1000);
            slot.Dispose();
            owned.Add(vm.AddPrivateMemorySlot(1, MovedTo, 0x1000, shared, gmem));
            vm.SetMemoryAttributes(MovedTo, 0x1000, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            launch.Finish();
        });
        try
        {
            Assert.Equal(new RmpEntry(Assigned: true, Validated: true), At(g, MovedTo));
            Assert.Equal(new RmpOwner(1, LaunchedAt, 0, 0, 0), OwnerAt(g, MovedTo));
            bool interrupted = false;
            Exception? failure = null;
            var runner = new Thread(() =>
            {
                try { interrupted = g.Vcpu.RunBounded().Interrupted; }
                catch (Exception e) { failure = e; }
            });
            runner.Start();
            Thread.Sleep(100);
            while (!runner.Join(20)) g.Vcpu.Kick();
            Assert.Null(failure);
            Assert.True(interrupted);
            Assert.Equal(1UL, g.ReportQword(0));
            Assert.Equal(0UL, g.ReportQword(1));
            Assert.Equal(new RmpOwner(1, LaunchedAt, 0, 0, 0), OwnerAt(g, MovedTo));
        }
        finally
        {
            for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
            GC.KeepAlive(source);
        }
    }

    /// <summary>
    /// A 2 MiB HugeTLB guest_memfd (the guest_memfd HugeTLB proposal, page_order branch) bound 2 MiB-aligned at GPA
    /// 0x400000 (linear 0x600000 with the C-bit): the first private fault makes one 2 MiB RMP entry
    /// (sev_gmem_prepare, is_large_rmp_possible); a 2 MiB PVALIDATE validates all 512 pages and a 2 MiB RMPADJUST
    /// sets their VMPL1 mask; a 4 KiB PVALIDATE (rescind) PSMASHes the entry into 512 4 KiB ones that keep the fields
    /// (sev_handle_rmp_fault → snp_rmptable_psmash) and rescinds one page; a 2 MiB PVALIDATE then is FAIL_SIZEMISMATCH.
    /// </summary>
    [Fact]
    public void A_2m_pvalidate_validates_a_2m_entry_and_a_4k_pvalidate_psmashes_it()
    {
        const ulong Gpa = 0x40_0000, Linear = 0x60_0000, Huge = 0x20_0000;
        var owned = new List<IDisposable>();
        var config = EmulatorConfig.X86_64().WithGuestMemfdHugetlb(GuestMemfdHugetlbEncoding.PageOrderField);
        using var g = SevEsGuest.Create(VmType.Snp, a =>
        {
            a.mov(rbx, ReportLinear);
            Pvalidate(a, Linear, 1, 1, 0);
            Rmpadjust(a, Linear, 1, 1 | ((ulong)SnpRmpVmpl.PermRead << 8), 1);
            Pvalidate(a, Linear + 0x1000, 0, 0, 2);
            Pvalidate(a, Linear, 1, 1, 3);
            Pvalidate(a, Linear + 0x2000, 0, 1, 4); // validated already (the PSMASH kept the bit)
            SevEsGuest.Terminate(a, 5);
        }, patchImage: image => BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(0x4000 + 3 * 8), Gpa | SevEsGuest.CBit | 0x83),
        snpFinish: launch =>
        {
            var vm = launch.Vm;
            var gmem = vm.CreateHugetlbGuestMemfd(Huge, GuestMemfdFlags.None, GuestMemfdHugePageSize.Size2M);
            var shared = vm.AllocateMemory(Huge);
            owned.Add(gmem);
            owned.Add(shared);
            owned.Add(vm.AddPrivateMemorySlot(1, Gpa, Huge, shared, gmem));
            vm.SetMemoryAttributes(Gpa, Huge, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            launch.Finish();
        }, config: config);
        try
        {
            AssertTerminated(g, 5);
            Assert.Equal(0UL, g.ReportQword(0));
            Assert.Equal(0UL, g.ReportQword(1));
            Assert.Equal(0UL, g.ReportQword(2));
            Assert.Equal((ulong)SnpRmp.PvalidateFailSizeMismatch, g.ReportQword(3));
            Assert.Equal(0x100UL, g.ReportQword(4));
            for (ulong p = 0; p < 512; p++)
            {
                ulong gpa = Gpa + p * 0x1000;
                Assert.Equal(new RmpEntry(Assigned: true, Validated: p != 1), At(g, gpa));
                Assert.Equal(new RmpOwner(1, gpa, Vmpl1Perms: SnpRmpVmpl.PermRead, 0, 0), OwnerAt(g, gpa));
            }
        }
        finally
        {
            for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        }
    }
}
