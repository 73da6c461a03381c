// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Kernel.Tracing;

/// <summary>
/// The arguments of the KVM ioctls that matter for guest_memfd, decoded into kernel field names (as strace -v prints
/// them); any other request shows its size. Descriptor numbers inside structs (guest_memfd) are named through
/// <paramref name="nameFd"/>, addresses through <paramref name="address"/>.
/// </summary>
internal sealed class IoctlArguments(Func<uint, string> nameFd, Func<ulong, string> address)
{
    /// <summary>A by-value argument (KVM_CHECK_EXTENSION's capability, KVM_CREATE_VM's type …).</summary>
    public static string Value(uint request, ulong arg)
    {
        if (request == KvmIoctls.KVM_CHECK_EXTENSION) return KvmCaps.NameOf((int)arg) ?? $"{arg}";
        if (request == KvmIoctls.KVM_CREATE_VM) return VmTypeName(arg);
        if (request == KvmIoctls.KVM_SET_TSS_ADDR || request == KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR) return $"0x{arg:x}";
        return $"{arg}";
    }

    /// <summary>A struct argument before the call (what userspace asked).</summary>
    public string Before(uint request, ReadOnlySpan<byte> arg)
    {
        if (request == KvmIoctls.KVM_CREATE_GUEST_MEMFD && Read(arg, out kvm_create_guest_memfd g))
            return $"{{size=0x{g.size:x}, flags={GmemFlags(g.flags)}}}";
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION2 && Read(arg, out kvm_userspace_memory_region2 r2))
        {
            string gmem = (r2.flags & KvmConstants.KVM_MEM_GUEST_MEMFD) != 0
                ? $", guest_memfd_offset=0x{r2.guest_memfd_offset:x}, guest_memfd={nameFd(r2.guest_memfd)}" : "";
            return $"{{slot={Slot(r2.slot)}, flags={SlotFlags(r2.flags)}, guest_phys_addr=0x{r2.guest_phys_addr:x}, " +
                   $"memory_size=0x{r2.memory_size:x}, userspace_addr={address(r2.userspace_addr)}{gmem}}}";
        }
        if (request == KvmIoctls.KVM_SET_USER_MEMORY_REGION && Read(arg, out kvm_userspace_memory_region r))
            return $"{{slot={Slot(r.slot)}, flags={SlotFlags(r.flags)}, guest_phys_addr=0x{r.guest_phys_addr:x}, " +
                   $"memory_size=0x{r.memory_size:x}, userspace_addr={address(r.userspace_addr)}}}";
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES && Read(arg, out kvm_memory_attributes a))
            return $"{{address=0x{a.address:x}, size=0x{a.size:x}, attributes={Attributes(a.attributes)}, flags=0x{a.flags:x}}}";
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2 && Read(arg, out kvm_memory_attributes2 a2))
            return $"{{offset=0x{a2.offset:x}, size=0x{a2.size:x}, attributes={Attributes(a2.attributes)}, flags=0x{a2.flags:x}}}";
        if (request == KvmIoctls.KVM_PRE_FAULT_MEMORY && Read(arg, out kvm_pre_fault_memory p))
            return $"{{gpa=0x{p.gpa:x}, size=0x{p.size:x}, flags=0x{p.flags:x}}}";
        if (request == KvmIoctls.KVM_ENABLE_CAP && Read(arg, out kvm_enable_cap c))
            return $"{{cap={KvmCaps.NameOf((int)c.cap) ?? c.cap.ToString(System.Globalization.CultureInfo.InvariantCulture)}, " +
                   $"flags=0x{c.flags:x}, args=[0x{c.args[0]:x}, 0x{c.args[1]:x}, 0x{c.args[2]:x}, 0x{c.args[3]:x}]}}";
        if (request == KvmIoctls.KVM_GET_DIRTY_LOG && Read(arg, out kvm_dirty_log d))
            return $"{{slot={Slot(d.slot)}, dirty_bitmap={address(d.dirty_bitmap)}}}";
        return $"<{arg.Length} bytes>";
    }

    /// <summary>What the kernel wrote back into the struct, where that is the news (empty otherwise).</summary>
    public static string After(uint request, ReadOnlySpan<byte> arg, long result)
    {
        // KVM_SET_MEMORY_ATTRIBUTES2 (v8): error_offset is written back on failure only.
        if (request == KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2 && result < 0 && Read(arg, out kvm_memory_attributes2 a2))
            return $"{{error_offset=0x{a2.error_offset:x}}}";
        // KVM_PRE_FAULT_MEMORY: gpa/size advance by what was done (all of it, or up to an error or a signal).
        if (request == KvmIoctls.KVM_PRE_FAULT_MEMORY && Read(arg, out kvm_pre_fault_memory p))
            return $"{{gpa=0x{p.gpa:x}, size=0x{p.size:x}}}";
        return "";
    }

    private static bool Read<T>(ReadOnlySpan<byte> arg, out T value) where T : unmanaged
    {
        if (arg.Length < Marshal.SizeOf<T>())
        {
            value = default;
            return false;
        }
        value = MemoryMarshal.Read<T>(arg);
        return true;
    }

    private static string Slot(uint slot) => (slot >> 16) == 0 ? $"{slot}" : $"{slot & 0xffff} (as_id {slot >> 16})";

    private static string VmTypeName(ulong type) => type switch
    {
        KvmConstants.KVM_X86_DEFAULT_VM => "KVM_X86_DEFAULT_VM",
        KvmConstants.KVM_X86_SW_PROTECTED_VM => "KVM_X86_SW_PROTECTED_VM",
        KvmConstants.KVM_X86_SEV_VM => "KVM_X86_SEV_VM",
        KvmConstants.KVM_X86_SEV_ES_VM => "KVM_X86_SEV_ES_VM",
        KvmConstants.KVM_X86_SNP_VM => "KVM_X86_SNP_VM",
        KvmConstants.KVM_X86_TDX_VM => "KVM_X86_TDX_VM",
        _ => $"{type}",
    };

    private static string GmemFlags(ulong flags) => Flags(flags,
        (KvmConstants.GUEST_MEMFD_FLAG_MMAP, "GUEST_MEMFD_FLAG_MMAP"),
        (KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED, "GUEST_MEMFD_FLAG_INIT_SHARED"));

    private static string SlotFlags(uint flags) => Flags(flags,
        (KvmConstants.KVM_MEM_LOG_DIRTY_PAGES, "KVM_MEM_LOG_DIRTY_PAGES"),
        (KvmConstants.KVM_MEM_READONLY, "KVM_MEM_READONLY"),
        (KvmConstants.KVM_MEM_GUEST_MEMFD, "KVM_MEM_GUEST_MEMFD"));

    private static string Attributes(ulong attributes) => Flags(attributes, (KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE, "KVM_MEMORY_ATTRIBUTE_PRIVATE"));

    /// <summary>Known bits by name, the rest in hex (strace's style: A|B|0x40); 0 when none.</summary>
    private static string Flags(ulong value, params (ulong Bit, string Name)[] known)
    {
        if (value == 0) return "0";
        var parts = new List<string>();
        foreach (var (bit, name) in known)
        {
            if ((value & bit) != 0)
            {
                parts.Add(name);
                value &= ~bit;
            }
        }
        if (value != 0) parts.Add($"0x{value:x}");
        return string.Join('|', parts);
    }
}
