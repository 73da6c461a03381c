// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Kernel.Tracing;

/// <summary>
/// What a traced KVM_RUN's exit carries, read from the kvm_run page after the call, strace-style and short: the port
/// and direction of KVM_EXIT_IO, the address of KVM_EXIT_MMIO, the call of KVM_EXIT_HYPERCALL, the type and first
/// data word of KVM_EXIT_SYSTEM_EVENT (an SEV-ES/SNP guest's termination request carries its GHCB MSR value there),
/// the suberror of KVM_EXIT_INTERNAL_ERROR. Other exits print only their reason.
/// </summary>
internal static class ExitDetails
{
    /// <summary>The exit's fields in braces, or "" for an exit without any worth printing.</summary>
    /// <remarks>SAFETY: <paramref name="page"/> is a mapped kvm_run page of <see cref="KvmRunLayout.size"/> bytes.</remarks>
    public static string Of(nint page, KvmExitReason reason)
    {
        byte U8(int offset) => Marshal.ReadByte(page, offset);
        uint U32(int offset) => (uint)Marshal.ReadInt32(page, offset);
        ulong U64(int offset) => (ulong)Marshal.ReadInt64(page, offset);
        return reason switch
        {
            KvmExitReason.KVM_EXIT_IO =>
                $" {{{(U8(KvmRunLayout.io_direction) == KvmConstants.KVM_EXIT_IO_OUT ? "out" : "in")} port=0x{(ushort)Marshal.ReadInt16(page, KvmRunLayout.io_port):x}" +
                $" size={U8(KvmRunLayout.io_size)} count={U32(KvmRunLayout.io_count)}}}",
            KvmExitReason.KVM_EXIT_MMIO =>
                $" {{{(U8(KvmRunLayout.mmio_is_write) != 0 ? "write" : "read")} addr=0x{U64(KvmRunLayout.mmio_phys_addr):x} len={U32(KvmRunLayout.mmio_len)}}}",
            KvmExitReason.KVM_EXIT_HYPERCALL =>
                $" {{nr={U64(KvmRunLayout.hypercall_nr)}, args=[0x{U64(KvmRunLayout.hypercall_args):x}, 0x{U64(KvmRunLayout.hypercall_args + 8):x}, 0x{U64(KvmRunLayout.hypercall_args + 16):x}]}}",
            KvmExitReason.KVM_EXIT_SYSTEM_EVENT =>
                $" {{type={SystemEventType(U32(KvmRunLayout.system_event_type))}, ndata={U32(KvmRunLayout.system_event_ndata)}, data[0]=0x{U64(KvmRunLayout.system_event_data):x}}}",
            KvmExitReason.KVM_EXIT_INTERNAL_ERROR =>
                $" {{suberror={U32(KvmRunLayout.internal_suberror)}, ndata={U32(KvmRunLayout.internal_ndata)}}}",
            _ => "",
        };
    }

    /// <summary>kvm_run.system_event.type (include/uapi/linux/kvm.h KVM_SYSTEM_EVENT_*).</summary>
    private static string SystemEventType(uint type) => type switch
    {
        1 => "KVM_SYSTEM_EVENT_SHUTDOWN",
        2 => "KVM_SYSTEM_EVENT_RESET",
        3 => "KVM_SYSTEM_EVENT_CRASH",
        4 => "KVM_SYSTEM_EVENT_WAKEUP",
        5 => "KVM_SYSTEM_EVENT_SUSPEND",
        KvmConstants.KVM_SYSTEM_EVENT_SEV_TERM => "KVM_SYSTEM_EVENT_SEV_TERM",
        KvmConstants.KVM_SYSTEM_EVENT_TDX_FATAL => "KVM_SYSTEM_EVENT_TDX_FATAL",
        _ => $"{type}",
    };
}
