// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// GuestMemfd.Write / WriteAll / WriteImage (GUEST_MEMFD_FLAG_WRITE, "[PATCH v7 1/2]", a proposal) on the emulated kernel
/// with the series applied, and the errors on kernels or files without it.
/// </summary>
public sealed class GuestMemfdWriteTests
{
    private static readonly int Ps = Environment.SystemPageSize;
    private const GuestMemfdFlags Shared = GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared;

    private static (EmulatedKernel Kernel, Kvm Kvm, Vm Vm) Open(EmulatorConfig config)
    {
        var emulated = new EmulatedKernel(config);
        var kvm = Kvm.Open(emulated, proposals: emulated.Config.Proposals);
        return (emulated, kvm, kvm.CreateVm());
    }

    private static byte[] Pattern(int length)
    {
        byte[] b = new byte[length];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)(i * 31 + 7);
        return b;
    }

    [Fact]
    public void The_flag_is_bit_3_and_spelled_as_the_kernel_spells_it()
    {
        Assert.Equal(8UL, (ulong)GuestMemfdFlags.Write);
        Assert.Equal("MMAP|INIT_SHARED|NO_DIRECT_MAP|WRITE", (Shared | GuestMemfdFlags.NoDirectMap | GuestMemfdFlags.Write).ToKernelString());
        Assert.Equal("WRITE|0x10", ((GuestMemfdFlags)0x18).ToKernelString());
    }

    [Fact]
    public void Write_returns_the_bytes_written_and_a_mapping_reads_them()
    {
        var (k, kvm, vm) = Open(EmulatorConfig.X86_64() with { GuestMemfdWrite = true });
        using (k)
        using (kvm)
        using (vm)
        {
            Assert.True(vm.SupportedGuestMemfdFlags.HasFlag(GuestMemfdFlags.Write));
            using var gmem = vm.CreateGuestMemfd(4 * (ulong)Ps, Shared | GuestMemfdFlags.Write);
            byte[] data = Pattern(3 * Ps);
            Assert.Equal(2L * Ps, gmem.Write(Ps, data.AsSpan(0, 2 * Ps)));
            // A partial write: the whole page before the unaligned tail.
            Assert.Equal((long)Ps, gmem.Write(3L * Ps, data.AsSpan(0, Ps + 1)));
            Assert.Equal(0L, gmem.Write(0, ReadOnlySpan<byte>.Empty));
            using var map = gmem.Map();
            byte[] back = new byte[2 * Ps];
            map.Read((ulong)Ps, back);
            Assert.Equal(data.AsSpan(0, 2 * Ps).ToArray(), back);
        }
    }

    [Fact]
    public void WriteAll_checks_alignment_up_front_and_WriteImage_pads_the_last_page()
    {
        var (k, kvm, vm) = Open(EmulatorConfig.X86_64() with { GuestMemfdWrite = true });
        using (k)
        using (kvm)
        using (vm)
        {
            using var gmem = vm.CreateGuestMemfd(4 * (ulong)Ps, Shared | GuestMemfdFlags.Write);
            var unaligned = Assert.Throws<ArgumentOutOfRangeException>(() => gmem.WriteAll(1, new byte[Ps]));
            Assert.Contains("not a page multiple", unaligned.Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentOutOfRangeException>(() => gmem.WriteAll(0, new byte[Ps + 1]));
            var beyond = Assert.Throws<ArgumentOutOfRangeException>(() => gmem.WriteAll(3L * Ps, new byte[2 * Ps]));
            Assert.Contains("beyond", beyond.Message, StringComparison.Ordinal);

            using var map = gmem.Map();
            map.Fill(0, gmem.Size, 0xee); // host faults make pages up to date; a write still replaces them (no NO_DIRECT_MAP)
            byte[] image = Pattern(Ps + 100);
            gmem.WriteImage(Ps, image);
            byte[] back = new byte[2 * Ps];
            map.Read((ulong)Ps, back);
            Assert.Equal(image, back.AsSpan(0, image.Length).ToArray());
            Assert.All(back.AsSpan(image.Length).ToArray(), b => Assert.Equal(0, b));
            Assert.Equal(0xee, map.Read<byte>(0));
            Assert.Throws<ArgumentOutOfRangeException>(() => gmem.WriteImage(3L * Ps, image));
        }
    }

    [Fact]
    public void A_file_without_the_flag_says_so_and_how_to_fix_it()
    {
        var (k, kvm, vm) = Open(EmulatorConfig.X86_64() with { GuestMemfdWrite = true });
        using (k)
        using (kvm)
        using (vm)
        {
            using var gmem = vm.CreateGuestMemfd(2 * (ulong)Ps, Shared);
            var ex = Assert.Throws<KvmException>(() => gmem.Write(0, new byte[Ps]));
            Assert.Equal(Errno.ENODEV, ex.Errno);
            Assert.Equal("pwrite", ex.Operation);
            Assert.Contains("created without GUEST_MEMFD_FLAG_WRITE", ex.Message, StringComparison.Ordinal);
            Assert.Contains("GuestMemfdFlags.Write", ex.Message, StringComparison.Ordinal);
            Assert.Contains("offset=0x0", ex.Request, StringComparison.Ordinal);
            using var writable = vm.CreateGuestMemfd(2 * (ulong)Ps, GuestMemfdFlags.Write | Shared);
            var einval = Assert.Throws<KvmException>(() => writable.Write(1, new byte[Ps]));
            Assert.Equal(Errno.EINVAL, einval.Errno);
            Assert.Contains("whole pages only", einval.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_kernel_without_the_series_is_reported_as_a_missing_capability_not_a_bare_errno()
    {
        var (k, kvm, vm) = Open(EmulatorConfig.X86_64());
        using (k)
        using (kvm)
        using (vm)
        {
            Assert.False(vm.SupportedGuestMemfdFlags.HasFlag(GuestMemfdFlags.Write));
            using var gmem = vm.CreateGuestMemfd(2 * (ulong)Ps, Shared);
            var ex = Assert.Throws<KvmCapabilityException>(() => gmem.Write(0, new byte[Ps]));
            Assert.Equal(Errno.ESPIPE, ex.Errno);
            Assert.Contains("GUEST_MEMFD_FLAG_WRITE", ex.Message, StringComparison.Ordinal);
            Assert.Equal((long)vm.SupportedGuestMemfdFlags, ex.Reported);
        }
    }

    [Fact]
    public void A_sealed_no_direct_map_page_is_explained()
    {
        var (k, kvm, vm) = Open(EmulatorConfig.X86_64() with { GuestMemfdWrite = true, GuestMemfdNoDirectMap = true });
        using (k)
        using (kvm)
        using (vm)
        {
            using var gmem = vm.CreateGuestMemfd(2 * (ulong)Ps, Shared | GuestMemfdFlags.Write | GuestMemfdFlags.NoDirectMap);
            gmem.WriteAll(0, new byte[2 * Ps]);
            var ex = Assert.Throws<KvmException>(() => gmem.WriteAll(0, new byte[Ps]));
            Assert.Equal(Errno.EEXIST, ex.Errno);
            Assert.Contains("punch a hole", ex.Message, StringComparison.Ordinal);
            gmem.PunchHole(0, Ps);
            gmem.WriteAll(0, new byte[Ps]);
        }
    }
}
