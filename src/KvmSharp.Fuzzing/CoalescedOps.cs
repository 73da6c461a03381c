// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.Coalesced"/> draws: KVM_REGISTER_COALESCED_MMIO / KVM_UNREGISTER_COALESCED_MMIO
/// (virt/kvm/coalesced_mmio.c) with zones around the tiny guests' MMIO address and a few ports — overlapping, size 0,
/// huge (above INT_MAX: kvm_io_bus_register_dev takes an int), wrapping, pio 0, 1 or anything — a bad pointer for the
/// struct, and the ring page of a vCPU mapping (KVM_COALESCED_MMIO_PAGE_OFFSET: one page per VM, the same under
/// every vCPU), written and read back. What zones do is what <see cref="OpKind.CoalescedGuestRun"/> shows.
/// </summary>
internal static class CoalescedOps
{
    public const int Register = 0, Unregister = 1, BadPointer = 2, Ring = 3;

    /// <summary>The tiny guests' MMIO address (TinyGuestRun.MmioGpa): zones there are reached by their writes.</summary>
    public const ulong Mmio = 0x40_0000;

    /// <summary>The first port the guest runs write; zones around it.</summary>
    public const ushort Port = 0x70;

    private static readonly ulong[] s_mmioOffsets = [0, 0, 4, 8, 0x10, 0x100, 0xFF8, 0x1000];
    private static readonly uint[] s_sizes = [0, 1, 2, 4, 8, 8, 0x10, 0x100, 0x1000, 0x1000, 0x10000, 0x7FFF_FFFF, 0x8000_0000, uint.MaxValue];

    /// <summary>A zone: (addr, size, pio).</summary>
    public static (ulong Addr, uint Size, uint Pio) Zone(Random rng)
    {
        uint pio = rng.Next(16) switch { < 10 => 0, < 15 => 1, _ => rng.Next(2) == 0 ? 2 : (uint)rng.Next() };
        ulong addr = rng.Next(12) switch
        {
            0 => 0,                                            // RAM in the guest runs: never reached
            1 => ulong.MaxValue - (ulong)rng.Next(16),         // addr + size wraps
            2 => (ulong)rng.NextInt64(),
            _ => pio == 1 ? Port + (ulong)rng.Next(-2, 10) : Mmio + s_mmioOffsets[rng.Next(s_mmioOffsets.Length)],
        };
        uint size = pio == 1 && rng.Next(2) == 0 ? (uint)rng.Next(0, 12) : s_sizes[rng.Next(s_sizes.Length)];
        return (addr, size, pio);
    }

    /// <summary>A zone to unregister derived from a registered one: itself, inside it, around it or shifted.</summary>
    public static (ulong Addr, uint Size, uint Pio) Around(Random rng, (ulong Addr, uint Size, uint Pio) zone) => rng.Next(6) switch
    {
        0 or 1 => zone,
        2 => (zone.Addr + 1, zone.Size > 1 ? zone.Size - 2 : 0, zone.Pio),  // inside: removes it
        3 => (zone.Addr - 1, zone.Size + 2, zone.Pio),                      // around: removes nothing
        4 => (zone.Addr + (ulong)rng.Next(1, 8), zone.Size, zone.Pio),       // past its end
        _ => (zone.Addr, zone.Size, zone.Pio ^ 1),                          // the other bus
    };

    public static string Apply(IKernel kernel, KernelFd fd, FuzzOp op, Func<long, string> describe)
    {
        switch (op.E)
        {
            case BadPointer:
            {
                uint request = (op.A & 2) == 0 ? KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO : KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO;
                return describe(kernel.Ioctl(fd, request, (op.A & 1) == 0 ? 0UL : 0xFFFF_8000_0000_0000UL));
            }
            case Ring:
                return RingPage(kernel, fd, op.D, op.A != 0, describe);
            default:
            {
                var zone = new kvm_coalesced_mmio_zone { addr = op.A, size = (uint)op.B, pio = (uint)op.C };
                uint request = op.E == Register ? KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO : KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO;
                return describe(kernel.Ioctl(fd, request, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref zone, 1))));
            }
        }
    }

    /// <summary>
    /// The ring page of vCPU <paramref name="vcpu"/>'s mapping (kvm_vcpu_fault: page KVM_COALESCED_MMIO_PAGE_OFFSET is
    /// the VM's ring): first and last after writing <paramref name="words"/> there when <paramref name="write"/>, and
    /// whether the entries are all zero (nothing else writes them in a session's VMs, which never run a guest).
    /// </summary>
    private static string RingPage(IKernel kernel, KernelFd vcpu, ulong words, bool write, Func<long, string> describe)
    {
        ulong ps = (ulong)Environment.SystemPageSize;
        long rc = MappedRegion.Map(kernel, vcpu, ps, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE, LinuxConstants.MAP_SHARED,
            KvmCoalescedMmio.KVM_COALESCED_MMIO_PAGE_OFFSET_X86 * (long)ps, out var region);
        if (rc < 0) return "mmap " + describe(rc);
        using (region)
        {
            var page = region!.GetSpan(0, (int)ps);
            if (write) BinaryPrimitives.WriteUInt64LittleEndian(page, words);
            bool zero = !page[KvmCoalescedMmio.RingHeaderSize..].ContainsAnyExcept((byte)0);
            return string.Create(CultureInfo.InvariantCulture,
                $"first={BinaryPrimitives.ReadUInt32LittleEndian(page)} last={BinaryPrimitives.ReadUInt32LittleEndian(page[4..])}{(zero ? "" : " entries written")}");
        }
    }

    internal static string Describe(FuzzOp op, string target) => op.E switch
    {
        BadPointer => $"{((op.A & 2) == 0 ? "KVM_REGISTER_COALESCED_MMIO" : "KVM_UNREGISTER_COALESCED_MMIO")}({target}, {((op.A & 1) == 0 ? "NULL" : "kernel pointer")})",
        Ring => $"coalesced ring page({target}{(op.A != 0 ? $", write first={(uint)op.D} last={(uint)(op.D >> 32)}" : "")})",
        _ => $"{(op.E == Register ? "KVM_REGISTER_COALESCED_MMIO" : "KVM_UNREGISTER_COALESCED_MMIO")}({target}, addr=0x{op.A:X}, size=0x{op.B:X}, pio={(uint)op.C})",
    };
}
