// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The buffer argument of an ioctl: its natural size, the structured fill (dispatched to the RawFuzzSession.Fill*.cs
/// areas) or random bytes, the random damage of <see cref="Mutate"/>, the length cut, and the safety shaping that keeps
/// every pointer the emulator follows inside the sandbox (see <see cref="RawIoctlFuzzer"/> remarks). Also the
/// little-endian field helpers the fills use.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>
    /// The argument buffer: mostly a filled struct (now and then mutated), else random bytes; cut to no bytes, a short
    /// length, the natural size or longer; then shaped for safety.
    /// </summary>
    private byte[] Buffer(uint request, int fd)
    {
        int natural = NaturalSize(request);
        byte[] full = new byte[Math.Max(natural, 8) + 64];
        bool structured = _rng.Next(5) != 0;
        if (structured) Fill(request, full, fd);
        else _rng.NextBytes(full);
        if (structured && _rng.Next(3) == 0) Mutate(full, natural);
        int length = _rng.Next(10) switch
        {
            0 => 0,
            1 => natural == 0 ? _rng.Next(0, 8) : _rng.Next(0, natural),
            2 => natural + _rng.Next(1, 64),
            _ => natural,
        };
        var buffer = full.AsSpan(0, Math.Min(length, full.Length)).ToArray();
        Shape(request, buffer);
        return buffer;
    }

    /// <summary>
    /// A likely-valid struct for the request, so calls get past the first checks. Each area (RawFuzzSession.Fill*.cs)
    /// fills the requests it knows and answers whether it did; any other request, and the MSR requests the irqchip
    /// declines, get random bytes. Only the area that fills draws from the generator, so a seed gives the same buffers.
    /// </summary>
    private void Fill(uint request, byte[] b, int fd)
    {
        bool filled = FillMemoryEncrypt(request, b, fd)
            || FillIrqchip(request, b, fd)
            || FillDevice(request, b)
            || FillArm64Vcpu(request, b)
            || FillGuestMemory(request, b, fd)
            || FillEnableCap(request, b)
            || FillEventFdWiring(request, b)
            || FillDirtyLog(request, b, fd)
            || FillX86Vcpu(request, b, fd)
            || FillMsrFilterOrZone(request, b);
        if (!filled) _rng.NextBytes(b);
    }

    /// <summary>The size of the request's struct (with room for a few entries where it has a flexible array), at most 512 bytes otherwise.</summary>
    private static int NaturalSize(uint request)
    {
        if (request == KvmIoctls.KVM_CREATE_GUEST_MEMFD) return SizeOf<kvm_create_guest_memfd>();
        if (request == KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP) return SizeOf<kvm_sev_cmd>(); // kvm_tdx_cmd: 24 bytes too
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION) return SizeOf<kvm_userspace_memory_region>();
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2) return SizeOf<kvm_userspace_memory_region2>();
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES) return SizeOf<kvm_memory_attributes>();
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2) return SizeOf<kvm_memory_attributes2>();
        if (request == KvmIoctls.KVM_PRE_FAULT_MEMORY) return SizeOf<kvm_pre_fault_memory>();
        if (request == KvmIoctls.KVM_ENABLE_CAP) return SizeOf<kvm_enable_cap>();
        // kvm_irq_routing header + 4 entries (the request encodes only the header).
        if (request == KvmIoctls.KVM_SET_GSI_ROUTING) return SizeOf<kvm_irq_routing>() + (4 * SizeOf<kvm_irq_routing_entry>());
        // Above the 512-byte cap below: kvm_irqchip (520) and kvm_lapic_state (1024).
        if (request == KvmIoctls.KVM_GET_IRQCHIP || request == KvmIoctls.KVM_SET_IRQCHIP) return SizeOf<kvm_irqchip>();
        if (request == KvmIoctls.KVM_GET_LAPIC || request == KvmIoctls.KVM_SET_LAPIC) return SizeOf<kvm_lapic_state>();
        if (request == KvmIoctls.KVM_GET_REGS || request == KvmIoctls.KVM_SET_REGS) return SizeOf<kvm_regs>();
        if (request == KvmIoctls.KVM_GET_SREGS || request == KvmIoctls.KVM_SET_SREGS) return SizeOf<kvm_sregs>();
        // kvm_msrs header + 4 entries; kvm_msr_list header + 64 indices (this host lists 41).
        if (request == KvmIoctls.KVM_GET_MSRS || request == KvmIoctls.KVM_SET_MSRS) return SizeOf<kvm_msrs>() + (4 * SizeOf<kvm_msr_entry>());
        if (request == KvmIoctls.KVM_GET_MSR_INDEX_LIST || request == KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST) return SizeOf<kvm_msr_list>() + (64 * sizeof(uint));
        if (IsCpuidRequest(request)) return SizeOf<kvm_cpuid2>() + (8 * SizeOf<kvm_cpuid_entry2>()); // header + 8 entries
        // kvm_reg_list: n, then room for Arm64RegListRoom ids (the request encodes only n).
        if (request == KvmArm64Ioctls.KVM_GET_REG_LIST) return sizeof(ulong) * (1 + (int)Arm64RegListRoom);
        int encoded = (int)_IOC_SIZE(request);
        return encoded == 0 ? 8 : Math.Min(encoded, 512);
    }

    private static int SizeOf<T>() where T : unmanaged => Unsafe.SizeOf<T>();

    private static bool IsDeviceAttrRequest(uint request) =>
        request == KvmIoctls.KVM_SET_DEVICE_ATTR || request == KvmIoctls.KVM_GET_DEVICE_ATTR || request == KvmIoctls.KVM_HAS_DEVICE_ATTR;

    private static bool IsCpuidRequest(uint request) =>
        request == KvmIoctls.KVM_GET_SUPPORTED_CPUID || request == KvmIoctls.KVM_GET_EMULATED_CPUID ||
        request == KvmIoctls.KVM_SET_CPUID2 || request == KvmIoctls.KVM_GET_CPUID2;

    private static void U64(byte[] b, int at, ulong v)
    {
        if (at + 8 <= b.Length) BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
    }

    private static void U32(byte[] b, int at, uint v)
    {
        if (at + 4 <= b.Length) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);
    }

    private static ulong GetU64(byte[] b, int at) => at + 8 <= b.Length ? BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at)) : 0;

    /// <summary>Random damage: flipped bits, a random word, a run of random bytes.</summary>
    private void Mutate(byte[] b, int natural)
    {
        int span = Math.Max(1, Math.Min(natural, b.Length));
        int n = _rng.Next(1, 4);
        for (int i = 0; i < n; i++)
        {
            switch (_rng.Next(3))
            {
                case 0:
                    b[_rng.Next(span)] ^= (byte)(1 << _rng.Next(8));
                    break;
                case 1:
                    U64(b, _rng.Next(Math.Max(1, span / 8)) * 8, Interesting());
                    break;
                default:
                    int at = _rng.Next(span);
                    _rng.NextBytes(b.AsSpan(at, Math.Min(b.Length - at, _rng.Next(1, 16))));
                    break;
            }
        }
    }

    /// <summary>
    /// Safety shaping after mutation (see <see cref="RawIoctlFuzzer"/> remarks): memory slots point into the
    /// sandbox; pre-fault ranges stay small.
    /// </summary>
    private void Shape(uint request, byte[] b)
    {
        ShapeMsrFilter(request, b);
        if ((request == KvmIoctls.KVM_SET_USER_MEMORY_REGION || request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2) && b.Length >= 32)
        {
            ulong size = GetU64(b, 16);
            ulong uaddr = GetU64(b, 24);
            bool aligned = (uaddr & (Ps - 1)) == 0 && (size & (Ps - 1)) == 0;
            if (aligned && size <= UserSandbox.Size && uaddr + size <= 1UL << 48)
            {
                // Would pass access_ok: place it inside the sandbox.
                ulong room = UserSandbox.Size - size;
                ulong within = room == 0 ? 0 : (uaddr % room) & ~(Ps - 1);
                U64(b, 24, (ulong)_sandbox.Start + within);
            }
            else if (aligned && size > UserSandbox.Size && uaddr + size >= uaddr && uaddr + size <= 1UL << 48)
            {
                // Too large for the sandbox but acceptable to access_ok: keep the size, make the address fail access_ok.
                U64(b, 24, (1UL << 48) - Ps);
            }
        }
        else if (request == KvmIoctls.KVM_GET_DIRTY_LOG || request == KvmIoctls.KVM_CLEAR_DIRTY_LOG)
        {
            // The kernel copies the bitmap to (GET) or from (CLEAR) this pointer with process_vm_writev/readv, i.e. into
            // this process: whatever the mutation made of it, it must not reach live memory.
            int at = request == KvmIoctls.KVM_CLEAR_DIRTY_LOG ? 16 : 8;
            if (at + 8 <= b.Length) U64(b, at, SafeUserPointer(GetU64(b, at)));
        }
        else if ((request == KvmArm64Ioctls.KVM_GET_ONE_REG || request == KvmArm64Ioctls.KVM_SET_ONE_REG) && b.Length >= 16)
        {
            // KVM_GET_ONE_REG writes KVM_REG_SIZE(id) bytes (up to 16 here; larger sizes are refused) to addr in this
            // process: keep it in the sandbox.
            U64(b, 8, SafeUserPointer(GetU64(b, 8)));
        }
        else if (request == KvmIoctls.KVM_PRE_FAULT_MEMORY && b.Length >= 16)
        {
            ulong size = GetU64(b, 8);
            ulong cap = 64 * Ps;
            if (size > cap) U64(b, 8, (size % cap) | (size & (Ps - 1)));
        }
    }
}
