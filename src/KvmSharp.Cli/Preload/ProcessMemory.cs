// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Kernel.Preload;

namespace KvmSharp.Cli.Preload;

/// <summary>
/// The program's own guest memory (anonymous memory it mapped and put in a memslot) handed to the emulated kernel for
/// direct use once a slot takes it — about fifteen times fewer microseconds per exit of a guest that touches memory
/// than a process_vm_readv per access. Only a range /proc/self/maps shows mapped whole, readable (and writable unless
/// the slot is KVM_MEM_READONLY), and from then on watched by the preload library.
/// </summary>
internal static class ProcessMemory
{
    // struct kvm_userspace_memory_region(2): slot u32, flags u32, guest_phys_addr u64, memory_size u64, userspace_addr u64.
    private const int FlagsOffset = 4;
    private const int SizeOffset = 16;
    private const int AddressOffset = 24;

    /// <summary>After a memslot ioctl succeeded with <paramref name="region"/> (the bytes the kernel read).</summary>
    public static void SlotSet(EmulatedKernel kernel, uint request, ReadOnlySpan<byte> region)
    {
        if (request != KvmIoctls.KVM_SET_USER_MEMORY_REGION && request != KvmIoctls.KVM_SET_USER_MEMORY_REGION2) return;
        if (region.Length < AddressOffset + 8) return;
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(region[SizeOffset..]);
        ulong address = BinaryPrimitives.ReadUInt64LittleEndian(region[AddressOffset..]);
        bool readOnly = (BinaryPrimitives.ReadUInt32LittleEndian(region[FlagsOffset..]) & KvmConstants.KVM_MEM_READONLY) != 0;
        if (size == 0 || address == 0 || address + size < address) return;
        int prot = LinuxConstants.PROT_READ | (readOnly ? 0 : LinuxConstants.PROT_WRITE);
        if (!MappedWith(address, address + size, readOnly ? "r" : "rw")) return;
        // Watched before adopted: from here on an munmap of it reaches the kernel first.
        PreloadMemoryWatch.Watch((nint)address, size);
        kernel.AdoptProcessMemory((nint)address, size, prot);
    }

    /// <summary>Whether /proc/self/maps covers [start, end) without a hole, with at least <paramref name="permissions"/>.</summary>
    private static bool MappedWith(ulong start, ulong end, string permissions)
    {
        ulong covered = start;
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            // "7f12a000-7f12c000 rw-p 00000000 00:00 0" — sorted by address.
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash < 0 || space < dash) continue;
            ulong from = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong to = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (to <= covered) continue;
            if (from > covered) return false;
            if (!line.AsSpan(space + 1).StartsWith(permissions, StringComparison.Ordinal)) return false;
            covered = to;
            if (covered >= end) return true;
        }
        return false;
    }
}
