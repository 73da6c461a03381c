// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// GUEST_MEMFD_FLAG_WRITE ("[PATCH v7 1/2] KVM: guest_memfd: add generic population via write") in the emulator: the
/// switch, the flag's bit and where it is listed, page state after a write (prepared, so a fault does not zero it),
/// what a failed write leaves, and the model's choices for private pages and NO_DIRECT_MAP.
/// </summary>
public sealed class GmemWriteTests
{
    private const int FlagsCap = KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS;
    private const ulong Write = 1UL << 3;
    private const ulong Ndm = 1UL << 2;
    private const ulong Shared = KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED;
    private const int SEEK_DATA = 3, SEEK_HOLE = 4;
    private static readonly int Ps = Raw.Page;

    private static EmulatorConfig WithWrite(bool noDirectMap = false) =>
        EmulatorConfig.X86_64() with { GuestMemfdWrite = true, GuestMemfdNoDirectMap = noDirectMap };

    private static byte[] Pattern(int length, byte seed)
    {
        byte[] b = new byte[length];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)(seed + i * 13);
        return b;
    }

    [Fact]
    public void Every_preset_leaves_the_proposal_off_and_the_old_answers_stand()
    {
        EmulatorConfig[] presets =
        [
            EmulatorConfig.LikeThisHost(), EmulatorConfig.LikeThisHost(guestMemfd: false), HostMatching.LikeThisHostAsItIs(),
            EmulatorConfig.X86_64(), EmulatorConfig.X86_64(inPlaceConversion: true), EmulatorConfig.Arm64(),
        ];
        foreach (var config in presets)
        {
            Assert.False(config.GuestMemfdWrite);
            using var k = new EmulatedKernel(config);
            using var sys = Raw.OpenKvm(k);
            Assert.Equal(0, Raw.Cap(k, sys, FlagsCap) & (long)Write);
        }
        // 6.18 without the proposal: no write_iter, no FMODE_PWRITE, no llseek on guest_memfd.
        using var plain = new EmulatedKernel(EmulatorConfig.X86_64());
        using var s2 = Raw.OpenKvm(plain);
        using var vm = Raw.CreateVm(plain, s2);
        using var g = Raw.CreateGmem(plain, vm, (ulong)Ps, Shared);
        byte[] page = new byte[Ps];
        Assert.Equal(Raw.EINVAL, plain.Write(g, page));
        Assert.Equal(Raw.ESPIPE, plain.Pwrite(g, page, 0));
        Assert.Equal(Raw.ESPIPE, plain.Lseek(g, 0, SEEK_SET));
        Assert.Equal(Raw.EINVAL, Raw.CreateGmemRc(plain, vm, (ulong)Ps, Write));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Write_is_listed_exactly_where_init_shared_is(bool inPlaceConversion)
    {
        var config = inPlaceConversion
            ? EmulatorConfig.X86_64(inPlaceConversion: true) with { GuestMemfdWrite = true }
            : WithWrite();
        using var k = new EmulatedKernel(config);
        using var sys = Raw.OpenKvm(k);
        Assert.Equal(Write | Shared, (ulong)Raw.Cap(k, sys, FlagsCap) & (Write | Shared));
        int with = 0, without = 0;
        foreach (uint type in config.VmTypes)
        {
            using var vm = Raw.CreateVm(k, sys, type);
            ulong flags = (ulong)Raw.Cap(k, vm, FlagsCap);
            bool initShared = (flags & KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED) != 0;
            Assert.Equal(initShared, (flags & Write) != 0);
            if (initShared) with++;
            else without++;
            long rc = Raw.CreateGmemRc(k, vm, (ulong)Ps, Write);
            if (initShared) Assert.Equal(0, k.Close((int)rc));
            else Assert.Equal(Raw.EINVAL, rc);
        }
        // 6.18: TDX, SNP and SW_PROTECTED have private memory, so neither; with in-place conversion every VM type has both.
        Assert.True(with > 0);
        Assert.Equal(inPlaceConversion ? 0 : 3, without);
    }

    [Fact]
    public void Bit_3_has_one_meaning_and_the_proposal_needs_a_6_18_tree()
    {
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(WithWrite() with { ExtraGuestMemfdFlags = Write }));
        Assert.Throws<ArgumentException>(() => new EmulatedKernel(EmulatorConfig.X86_64(KernelGeneration.Linux611) with { GuestMemfdWrite = true }));
        // Without the proposal an extra bit 3 is accepted with no behaviour: the file still cannot be written.
        using var k = new EmulatedKernel(EmulatorConfig.X86_64() with { ExtraGuestMemfdFlags = Write });
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var g = Raw.CreateGmem(k, vm, (ulong)Ps, Write);
        Assert.Equal(Raw.ESPIPE, k.Pwrite(g, new byte[Ps], 0));
    }

    [Fact]
    public void A_written_page_is_prepared_so_a_guest_fault_keeps_it_and_punch_hole_zeroes_it()
    {
        using var k = new EmulatedKernel(WithWrite());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var g = Raw.CreateGmem(k, vm, 4 * (ulong)Ps, Shared | Write);
        byte[] data = Pattern(2 * Ps, 3);
        Assert.Equal(2L * Ps, k.Pwrite(g, data, Ps));
        const ulong Gpa = 0x100000;
        Assert.Equal(0, Raw.Region2(k, vm, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, Gpa, 4 * (ulong)Ps, gmemFd: g.Number));
        long vcpu = k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL);
        Assert.True(vcpu >= 0, $"KVM_CREATE_VCPU: {vcpu}");
        using var vcpuFd = k.Adopt((int)vcpu);
        // The guest fault (kvm_gmem_get_pfn) finds the folio up to date and does not clear it.
        var range = new kvm_pre_fault_memory { gpa = Gpa, size = 4 * (ulong)Ps };
        Assert.Equal(0, k.Ioctl(vcpuFd, KvmIoctls.KVM_PRE_FAULT_MEMORY, Raw.Bytes(ref range)));
        Assert.Equal(0, k.Mmap(0, 4 * (ulong)Ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint map));
        byte[] back = new byte[2 * Ps];
        Marshal.Copy(map + Ps, back, 0, back.Length);
        Assert.Equal(data, back);
        Assert.Equal(0, Marshal.ReadByte(map));
        Assert.Equal(0, k.Fallocate(g, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, Ps, Ps));
        Assert.Equal(0, Marshal.ReadByte(map + Ps));
        Assert.Equal(data[Ps], Marshal.ReadByte(map + 2 * Ps));
        Assert.Equal(0, k.Munmap(map, 4 * (ulong)Ps));
        Assert.Empty(EmulatorInvariants.Check(k));
    }

    [Fact]
    public void A_refused_write_leaves_no_page_but_a_zero_length_one_leaves_its_page_as_the_kernel_does()
    {
        using var k = new EmulatedKernel(WithWrite());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        // No INIT_SHARED: the host cannot fault the pages, so residency is exactly what the emulator recorded (on an
        // INIT_SHARED file the huge-page backing makes a written page's 2 MiB neighbours read resident, as host faults do).
        using var g = Raw.CreateGmem(k, vm, 4 * (ulong)Ps, KvmConstants.GUEST_MEMFD_FLAG_MMAP | Write);
        Assert.Equal(0, k.Mmap(0, 4 * (ulong)Ps, PROT_READ, MAP_SHARED, g, 0, out nint map));
        byte[] resident = new byte[4];
        Assert.Equal(Raw.EINVAL, k.Pwrite(g, new byte[1], 3L * Ps));
        Assert.Equal(Raw.EINVAL, k.Pwrite(g, new byte[Ps], 4L * Ps));
        Assert.Equal(Raw.EINVAL, k.Pwrite(g, new byte[Ps], 1));
        Assert.Equal(0, k.Mincore(map, 4 * (ulong)Ps, resident));
        Assert.Equal(new byte[4], resident);
        // generic_perform_write: write_begin(len 0) accepts and allocates, write_end marks it up to date, then EFAULT.
        Assert.Equal(Raw.EFAULT, k.Pwrite(g, [], 2L * Ps));
        Assert.Equal(Raw.EFAULT, k.Pwrite(g, [], 4L * Ps)); // at i_size: the folio past the end is not recorded
        Assert.Equal(0, k.Mincore(map, 4 * (ulong)Ps, resident));
        Assert.Equal(new byte[] { 0, 0, 1, 0 }, resident);
        Assert.Empty(EmulatorInvariants.Check(k));
        Assert.Equal(0, k.Munmap(map, 4 * (ulong)Ps));
    }

    [Fact]
    public void Write_uses_and_moves_the_file_position_and_lseek_works_on_every_guest_memfd()
    {
        using var k = new EmulatedKernel(WithWrite());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var g = Raw.CreateGmem(k, vm, 4 * (ulong)Ps, Write);
        using var other = Raw.CreateGmem(k, vm, 4 * (ulong)Ps, Shared);
        Assert.Equal(2L * Ps, k.Write(g, new byte[2 * Ps + 7]));
        Assert.Equal(2L * Ps, k.Lseek(g, 0, SEEK_CUR));
        Assert.Equal(Raw.ENODEV, k.Write(other, new byte[Ps]));
        Assert.Equal(0, k.Lseek(other, 0, SEEK_CUR));
        Assert.Equal(4L * Ps, k.Lseek(other, 0, SEEK_HOLE));
        Assert.Equal(-6, k.Lseek(other, 4L * Ps, SEEK_DATA)); // ENXIO
        // The VM and /dev/kvm files keep their answers.
        Assert.Equal(Raw.EINVAL, k.Write(vm, new byte[8]));
        Assert.Equal(Raw.ESPIPE, k.Pwrite(vm, new byte[8], 0));
        Assert.Equal(Raw.EINVAL, k.Pwrite(vm, new byte[8], -1));
    }

    [Fact]
    public void With_in_place_conversion_only_shared_pages_take_a_write()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true) with { GuestMemfdWrite = true });
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys, KvmConstants.KVM_X86_SW_PROTECTED_VM);
        // No INIT_SHARED: every page starts private.
        using var g = Raw.CreateGmem(k, vm, 4 * (ulong)Ps, KvmConstants.GUEST_MEMFD_FLAG_MMAP | Write);
        byte[] two = new byte[2 * Ps];
        Assert.Equal(Raw.EINVAL, k.Pwrite(g, two.AsSpan(0, Ps), 0));
        Assert.Equal(0, Raw.Convert(k, g, 0, (ulong)Ps, toPrivate: false));
        Assert.Equal((long)Ps, k.Pwrite(g, two.AsSpan(0, Ps), 0));
        // Page 0 shared, page 1 private: the write stops at page 1.
        Assert.Equal((long)Ps, k.Pwrite(g, two, 0));
        Assert.Equal(Raw.EINVAL, k.Pwrite(g, two, Ps));
        Assert.Empty(EmulatorInvariants.Check(k));
    }

    [Fact]
    public void With_no_direct_map_a_page_a_fault_or_a_write_made_up_to_date_is_sealed_until_punched()
    {
        using var k = new EmulatedKernel(WithWrite(noDirectMap: true));
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var g = Raw.CreateGmem(k, vm, 4 * (ulong)Ps, Shared | Write | Ndm);
        byte[] page = Pattern(Ps, 9);
        Assert.Equal((long)Ps, k.Pwrite(g, page, 0));
        Assert.Equal(Raw.EEXIST, k.Pwrite(g, page, 0));
        // A host fault through the mapping (kvm_gmem_fault_user_mapping zaps the direct map).
        Assert.Equal(0, k.Mmap(0, 4 * (ulong)Ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint map));
        Assert.Equal(page[5], Marshal.ReadByte(map + 5));
        Marshal.WriteByte(map + Ps, 1);
        Assert.Equal(Raw.EEXIST, k.Pwrite(g, page, Ps));
        // A guest fault (kvm_gmem_get_pfn zaps too).
        const ulong Gpa = 0x100000;
        Assert.Equal(0, Raw.Region2(k, vm, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, Gpa, 4 * (ulong)Ps, gmemFd: g.Number));
        using var vcpu = k.Adopt((int)k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, 0UL));
        var range = new kvm_pre_fault_memory { gpa = Gpa + 2 * (ulong)Ps, size = (ulong)Ps };
        Assert.Equal(0, k.Ioctl(vcpu, KvmIoctls.KVM_PRE_FAULT_MEMORY, Raw.Bytes(ref range)));
        Assert.Equal(Raw.EEXIST, k.Pwrite(g, page, 2L * Ps));
        // fallocate allocates without preparing: page 3 takes a write, once.
        Assert.Equal(0, k.Fallocate(g, FALLOC_FL_KEEP_SIZE, 3L * Ps, Ps));
        Assert.Equal((long)Ps, k.Pwrite(g, page, 3L * Ps));
        Assert.Equal(Raw.EEXIST, k.Pwrite(g, page, 3L * Ps));
        // Punch-hole frees the folios (free_folio restores the direct map).
        Assert.Equal(0, k.Fallocate(g, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 2L * Ps));
        Assert.Equal(2L * Ps, k.Pwrite(g, new byte[2 * Ps], 0));
        Assert.Equal(0, k.Munmap(map, 4 * (ulong)Ps));
        Assert.Empty(EmulatorInvariants.Check(k));
    }

    [Fact]
    public void The_file_position_invariant_holds_after_seeks_and_writes_and_catches_a_negative_one()
    {
        using var k = new EmulatedKernel(WithWrite());
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var g = Raw.CreateGmem(k, vm, 2 * (ulong)Ps, Write);
        Assert.Equal(long.MaxValue - 10, k.Lseek(g, long.MaxValue - 10, SEEK_SET));
        Assert.Equal(Raw.EINVAL, k.Write(g, new byte[Ps]));
        Assert.Equal(Raw.EINVAL, k.Lseek(g, 11, SEEK_CUR)); // wraps negative: refused, f_pos kept
        Assert.Empty(EmulatorInvariants.Check(k));
        var file = k.InvariantView.Fds.Get(g.Number)!;
        file.Position = -1;
        Assert.Contains(EmulatorInvariants.Check(k), e => e.Contains("f_pos -1", StringComparison.Ordinal));
        file.Position = 0;
    }

    [Fact]
    public void A_write_on_a_second_numa_node_policy_places_its_folios_and_counts_as_allocated()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(KernelGeneration.Linux619) with { GuestMemfdWrite = true, NumaNodes = 2 });
        using var sys = Raw.OpenKvm(k);
        using var vm = Raw.CreateVm(k, sys);
        using var g = Raw.CreateGmem(k, vm, 2 * (ulong)Ps, Shared | Write);
        Assert.Equal(2L * Ps, k.Pwrite(g, new byte[2 * Ps], 0));
        Assert.Equal(0, k.Mmap(0, 2 * (ulong)Ps, PROT_READ, MAP_SHARED, g, 0, out nint map));
        byte[] resident = new byte[2];
        Assert.Equal(0, k.Mincore(map, 2 * (ulong)Ps, resident));
        Assert.Equal(new byte[] { 1, 1 }, resident);
        Assert.Equal(0, k.Munmap(map, 2 * (ulong)Ps));
        Assert.Empty(EmulatorInvariants.Check(k));
    }
}
