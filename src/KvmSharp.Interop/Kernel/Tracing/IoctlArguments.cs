// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Kernel.Tracing;

/// <summary>
/// The arguments of the KVM ioctls that matter for guest_memfd, guest time and device attributes, decoded into kernel
/// field names (as strace -v prints them); any other request shows its size. Descriptor numbers inside structs
/// (guest_memfd) are named through <paramref name="nameFd"/>, addresses through <paramref name="address"/>. With
/// <paramref name="comparable"/>, values that are readings of a clock (kvmclock, CLOCK_REALTIME, the host TSC, a TSC
/// offset) print as <c>&lt;ns&gt;</c>, <c>&lt;tsc&gt;</c>, <c>&lt;value&gt;</c>: they differ from run to run.
/// </summary>
internal sealed class IoctlArguments(Func<uint, string> nameFd, Func<ulong, string> address, bool comparable = false)
{
    /// <summary>A by-value argument (KVM_CHECK_EXTENSION's capability, KVM_CREATE_VM's type, a TSC rate …).</summary>
    public static string Value(uint request, ulong arg)
    {
        if (request == KvmIoctls.KVM_CHECK_EXTENSION) return KvmCaps.NameOf((int)arg) ?? $"{arg}";
        if (request == KvmIoctls.KVM_CREATE_VM) return VmTypeName(arg);
        if (request == KvmIoctls.KVM_SET_TSS_ADDR || request == KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR) return $"0x{arg:x}";
        // KVM_SET_TSC_KHZ: the kernel takes (u32)arg, 0 meaning the host's rate.
        if (request == KvmIoctls.KVM_SET_TSC_KHZ)
            return arg == 0 ? "0 (host rate)" : arg > uint.MaxValue ? $"{arg} kHz (u32: {(uint)arg})" : $"{arg} kHz";
        return $"{arg}";
    }

    /// <summary>What a by-value call returned beside its number, where that is the news (empty otherwise).</summary>
    public static string ValueResult(uint request, long result)
    {
        // KVM_GET_TSC_KHZ returns the rate through an int: from 2^31 kHz on it is negative (below -4095 not an errno).
        if (request == KvmIoctls.KVM_GET_TSC_KHZ && result >= 0) return "kHz";
        if (request == KvmIoctls.KVM_GET_TSC_KHZ && result < -LinuxConstants.MAX_ERRNO) return $"({(uint)result} kHz)";
        return "";
    }

    /// <summary>A struct argument before the call (what userspace asked), on a descriptor labelled <paramref name="fdLabel"/>.</summary>
    public string Before(uint request, ReadOnlySpan<byte> arg, string fdLabel = "")
    {
        if (request == KvmIoctls.KVM_SET_CLOCK && Read(arg, out kvm_clock_data clock))
        {
            // kvm_vm_ioctl_set_clock reads realtime only with KVM_CLOCK_REALTIME; host_tsc and the pads never.
            string realtime = (clock.flags & KvmConstants.KVM_CLOCK_REALTIME) != 0 ? $", realtime={Time(clock.realtime, "ns")}" : "";
            return $"{{clock={clock.clock}, flags={ClockFlags(clock.flags)}{realtime}}}";
        }
        if ((request == KvmIoctls.KVM_SET_DEVICE_ATTR || request == KvmIoctls.KVM_GET_DEVICE_ATTR || request == KvmIoctls.KVM_HAS_DEVICE_ATTR) &&
            Read(arg, out kvm_device_attr attr))
        {
            var (group, name) = AttributeNames(attr.group, attr.attr, fdLabel);
            string value = request == KvmIoctls.KVM_SET_DEVICE_ATTR && comparable ? "<addr>" : address(attr.addr);
            return $"{{flags=0x{attr.flags:x}, group={group}, attr={name}, addr={value}}}";
        }
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
        if (request == KvmIoctls.KVM_IOEVENTFD && Read(arg, out kvm_ioeventfd io))
            return $"{{datamatch=0x{io.datamatch:x}, addr=0x{io.addr:x}, len={io.len}, fd={nameFd((uint)io.fd)}, flags={IoEventFdFlags(io.flags)}}}";
        if (request == KvmIoctls.KVM_IRQFD && Read(arg, out kvm_irqfd irq))
            return $"{{fd={nameFd(irq.fd)}, gsi={irq.gsi}, flags=0x{irq.flags:x}, resamplefd={nameFd(irq.resamplefd)}}}";
        return $"<{arg.Length} bytes>";
    }

    /// <summary>kvm_ioeventfd.flags by name (KVM_IOEVENTFD_FLAG_*), unknown bits in hex.</summary>
    private static string IoEventFdFlags(uint flags)
    {
        var names = new List<string>();
        if ((flags & KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH) != 0) names.Add("DATAMATCH");
        if ((flags & KvmConstants.KVM_IOEVENTFD_FLAG_PIO) != 0) names.Add("PIO");
        if ((flags & KvmConstants.KVM_IOEVENTFD_FLAG_DEASSIGN) != 0) names.Add("DEASSIGN");
        if ((flags & KvmConstants.KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY) != 0) names.Add("VIRTIO_CCW_NOTIFY");
        uint rest = flags & ~(KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH | KvmConstants.KVM_IOEVENTFD_FLAG_PIO |
                              KvmConstants.KVM_IOEVENTFD_FLAG_DEASSIGN | KvmConstants.KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY);
        if (rest != 0) names.Add($"0x{rest:x}");
        return names.Count == 0 ? "0" : string.Join('|', names);
    }

    /// <summary>What the kernel wrote back into the struct, where that is the news (empty otherwise).</summary>
    public string After(uint request, ReadOnlySpan<byte> arg, long result, string fdLabel = "")
    {
        // KVM_GET_CLOCK: the clock and its flags; realtime and host_tsc only where a flag says the kernel filled them.
        if (request == KvmIoctls.KVM_GET_CLOCK && result == 0 && Read(arg, out kvm_clock_data clock))
        {
            string realtime = (clock.flags & KvmConstants.KVM_CLOCK_REALTIME) != 0 ? $", realtime={Time(clock.realtime, "ns")}" : "";
            string tsc = (clock.flags & KvmConstants.KVM_CLOCK_HOST_TSC) != 0 ? $", host_tsc={Time(clock.host_tsc, "tsc")}" : "";
            return $"{{clock={Time(clock.clock, "ns")}, flags={ClockFlags(clock.flags)}{realtime}{tsc}}}";
        }
        // KVM_GET_DEVICE_ATTR: the kernel wrote the attribute's u64 (the TSC offset is the one x86 vCPU attribute, the
        // supported XCR0 the /dev/kvm one) at addr — readable here because the call succeeded.
        if (request == KvmIoctls.KVM_GET_DEVICE_ATTR && result == 0 && Read(arg, out kvm_device_attr attr) && attr.addr != 0)
        {
            // SAFETY: the kernel has just written these 8 bytes (put_user succeeded), so they are mapped in this process.
            ulong value = (ulong)Marshal.ReadInt64((nint)attr.addr);
            bool isTscOffset = Kind(fdLabel) == "vcpu";
            return $"{{*addr={(isTscOffset ? Time(value, "value") : $"0x{value:x}")}}}";
        }
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

    /// <summary>A clock reading: its value, or <c>&lt;unit&gt;</c> when the trace must compare across runs.</summary>
    private string Time(ulong value, string unit) => comparable ? $"<{unit}>" : unit == "value" ? $"0x{value:x}" : $"{value}";

    private static string ClockFlags(uint flags) => Flags(flags,
        (KvmConstants.KVM_CLOCK_TSC_STABLE, "KVM_CLOCK_TSC_STABLE"),
        (KvmConstants.KVM_CLOCK_REALTIME, "KVM_CLOCK_REALTIME"),
        (KvmConstants.KVM_CLOCK_HOST_TSC, "KVM_CLOCK_HOST_TSC"));

    /// <summary>The descriptor kind of a label: "vcpu" for vcpu#1, "kvm" for kvm#1, "vm" for vm#1.</summary>
    private static string Kind(string fdLabel) => fdLabel.IndexOf('#') is int hash and > 0 ? fdLabel[..hash] : fdLabel;

    /// <summary>x86 device attribute group and attribute names: a vCPU's KVM_VCPU_TSC_CTRL, /dev/kvm's KVM_X86_GRP_SYSTEM/SEV.</summary>
    private static (string Group, string Attr) AttributeNames(uint group, ulong attr, string fdLabel) => Kind(fdLabel) switch
    {
        "vcpu" when group == KvmConstants.KVM_VCPU_TSC_CTRL =>
            ("KVM_VCPU_TSC_CTRL", attr == KvmConstants.KVM_VCPU_TSC_OFFSET ? "KVM_VCPU_TSC_OFFSET" : $"{attr}"),
        "kvm" when group == KvmConstants.KVM_X86_GRP_SYSTEM =>
            ("KVM_X86_GRP_SYSTEM", attr == KvmConstants.KVM_X86_XCOMP_GUEST_SUPP ? "KVM_X86_XCOMP_GUEST_SUPP" : $"{attr}"),
        "kvm" when group == KvmConstants.KVM_X86_GRP_SEV =>
            ("KVM_X86_GRP_SEV", attr == KvmConstants.KVM_X86_SEV_VMSA_FEATURES ? "KVM_X86_SEV_VMSA_FEATURES" : $"{attr}"),
        _ => ($"{group}", $"{attr}"),
    };

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
