// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>Who keeps what alive: files, VMs, slots and pages (kernel-spec.md §2.2, §2.6).</summary>
public static class LifetimeRules
{
    private const GuestMemfdFlags Shared = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;

    [ConformanceCase("virt/kvm/guest_memfd.c __kvm_gmem_create: kvm_get_kvm — the file pins the VM", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void the_file_keeps_its_vm_alive(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * (ulong)PageSize, Shared);
        vm.Dispose();
        // The VM fd is closed but the VM lives on through the file: every file operation still works.
        gmem.Allocate(0, 4L * PageSize);
        using var mem = gmem.Map();
        mem.Write<ulong>(8, 0xabcdef);
        Assert.Equal(0xabcdefUL, mem.Read<ulong>(8));
        gmem.PunchHole(0, PageSize);
        Assert.Equal(0UL, mem.Read<ulong>(8));
        Assert.Equal(4L * PageSize, gmem.Stat().Size);
    }

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_unbind: deleting a slot does not free the file's pages", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void deleting_a_slot_keeps_the_contents(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(2 * (ulong)PageSize, Shared);
        using var mem = gmem.Map();
        mem.Fill(0, 2 * (ulong)PageSize, 0x5c);
        var slot = vm.AddGuestMemfdSlot(3, 0x200000, 2 * (ulong)PageSize, gmem);
        slot.Dispose();
        Assert.Equal(-1, mem.GetSpan(0, 2 * PageSize).IndexOfAnyExcept((byte)0x5c));
        // And the same range binds again.
        using var again = vm.AddGuestMemfdSlot(3, 0x200000, 2 * (ulong)PageSize, gmem);
    }

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_fallocate: allocated pages read as zero", Requires = KernelRequirement.GuestMemfd)]
    public static void allocated_pages_read_as_zero(CaseContext ctx) => ctx.GmemTest(f => Has(f, Shared), (vm, gmem) =>
    {
        gmem.Allocate(0, (long)gmem.Size);
        using var mem = gmem.Map();
        Assert.Equal(-1, mem.GetSpan(0, (int)gmem.Size).IndexOfAnyExcept((byte)0));
    });

    [ConformanceCase("virt/kvm/guest_memfd.c kvm_gmem_create: no upper bound but the sign; nothing is allocated up front", Requires = KernelRequirement.MappableGuestMemfd)]
    public static void a_huge_file_is_created_lazily(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        ulong size = 1UL << 40; // 1 TiB
        using var gmem = vm.CreateGuestMemfd(size, Shared);
        var st = gmem.Stat();
        Assert.Equal((long)size, st.Size);
        Assert.Equal(0, st.Blocks);
        using var mem = gmem.Map(2 * (ulong)PageSize, offset: size - 2 * (ulong)PageSize);
        mem.Write<uint>((ulong)PageSize, 0x1234);
        Assert.Equal(0x1234u, mem.Read<uint>((ulong)PageSize));
    }

    [ConformanceCase("virt/kvm/kvm_main.c kvm_vm_ioctl_check_extension_generic: unknown and unmerged capabilities are 0")]
    public static void unmerged_capabilities_read_as_absent(CaseContext ctx)
    {
        if (!ctx.Target.IsReal) Skip("the emulator implements the proposals; this case records what the host kernel lacks");
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        Assert.Equal(0, vm.CheckExtension(KvmCaps.KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES));
        Assert.Equal(0, kvm.CheckExtension(100_000));
    }
}
