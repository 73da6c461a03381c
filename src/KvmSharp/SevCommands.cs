// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>KVM_MEMORY_ENCRYPT_OP with a kvm_sev_cmd, shared by <see cref="SevLaunch"/> and <see cref="SnpLaunch"/>.</summary>
internal static class SevCommands
{
    /// <summary>The kernel's name of a sev_cmd_id, for messages.</summary>
    public static string Name(uint id) => id switch
    {
        KvmMemoryEncrypt.KVM_SEV_INIT2 => "KVM_SEV_INIT2",
        KvmMemoryEncrypt.KVM_SEV_LAUNCH_START => "KVM_SEV_LAUNCH_START",
        KvmMemoryEncrypt.KVM_SEV_LAUNCH_UPDATE_DATA => "KVM_SEV_LAUNCH_UPDATE_DATA",
        KvmMemoryEncrypt.KVM_SEV_LAUNCH_UPDATE_VMSA => "KVM_SEV_LAUNCH_UPDATE_VMSA",
        KvmMemoryEncrypt.KVM_SEV_LAUNCH_MEASURE => "KVM_SEV_LAUNCH_MEASURE",
        KvmMemoryEncrypt.KVM_SEV_LAUNCH_FINISH => "KVM_SEV_LAUNCH_FINISH",
        KvmMemoryEncrypt.KVM_SEV_GUEST_STATUS => "KVM_SEV_GUEST_STATUS",
        KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START => "KVM_SEV_SNP_LAUNCH_START",
        KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE => "KVM_SEV_SNP_LAUNCH_UPDATE",
        KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_FINISH => "KVM_SEV_SNP_LAUNCH_FINISH",
        _ => $"KVM_MEMORY_ENCRYPT_OP(sev id {id})",
    };

    /// <summary>One command; throws <see cref="SevCommandException"/> with the firmware's error on failure.</summary>
    /// <remarks><paramref name="data"/> is kept alive (pinned) until the kernel returned.</remarks>
    public static void Issue(Vm vm, KernelFd sev, uint id, PinnedArray<byte>? data, string request)
    {
        var cmd = new kvm_sev_cmd { id = id, data = data?.Address ?? 0, sev_fd = (uint)sev.Number };
        long rc = CocoCall.Sev(vm, ref cmd);
        GC.KeepAlive(data);
        if (KvmCall.IsError(rc)) throw new SevCommandException(Name(id), (int)-rc, cmd.error, request);
    }

    /// <summary>KVM_SEV_INIT2 (kvm_sev_init); the descriptor is not used by the kernel for it.</summary>
    public static void Init2(Vm vm, KernelFd sev, ulong vmsaFeatures, ushort ghcbVersion)
    {
        var buffer = CocoCall.Pin(new kvm_sev_init { vmsa_features = vmsaFeatures, ghcb_version = ghcbVersion });
        Issue(vm, sev, KvmMemoryEncrypt.KVM_SEV_INIT2, buffer, $"vmsa_features=0x{vmsaFeatures:X} ghcb_version={ghcbVersion}");
    }
}
