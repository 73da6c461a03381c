// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// The AMD Secure Processor's status codes (include/uapi/linux/psp-sev.h <c>enum sev_ret_code</c>), as the kernel
/// returns them in <c>kvm_sev_cmd.error</c> next to -EIO. Codes the SDK does not name print as numbers.
/// </summary>
public enum SevFirmwareStatus : uint
{
    /// <summary>SEV_RET_SUCCESS (also: the firmware did not run, e.g. the kernel refused the command first).</summary>
    Success = 0,
    /// <summary>SEV_RET_INVALID_PLATFORM_STATE.</summary>
    InvalidPlatformState = 1,
    /// <summary>SEV_RET_INVALID_GUEST_STATE: the command is not valid in the guest's current launch state.</summary>
    InvalidGuestState = 2,
    /// <summary>SEV_RET_INVALID_CONFIG.</summary>
    InvalidConfig = 3,
    /// <summary>SEV_RET_INVALID_LEN: a buffer is too small (LAUNCH_MEASURE also reports the length it needs).</summary>
    InvalidLength = 4,
    /// <summary>SEV_RET_ALREADY_OWNED.</summary>
    AlreadyOwned = 5,
    /// <summary>SEV_RET_INVALID_CERTIFICATE.</summary>
    InvalidCertificate = 6,
    /// <summary>SEV_RET_POLICY_FAILURE.</summary>
    PolicyFailure = 7,
    /// <summary>SEV_RET_INACTIVE.</summary>
    Inactive = 8,
    /// <summary>SEV_RET_INVALID_ADDRESS.</summary>
    InvalidAddress = 9,
    /// <summary>SEV_RET_BAD_SIGNATURE.</summary>
    BadSignature = 10,
    /// <summary>SEV_RET_BAD_MEASUREMENT.</summary>
    BadMeasurement = 11,
    /// <summary>SEV_RET_ASID_OWNED: the VM's ASID is already bound to a guest.</summary>
    AsidOwned = 12,
    /// <summary>SEV_RET_INVALID_ASID.</summary>
    InvalidAsid = 13,
    /// <summary>SEV_RET_INVALID_GUEST: no such guest handle.</summary>
    InvalidGuest = 16,
    /// <summary>SEV_RET_INVALID_COMMAND.</summary>
    InvalidCommand = 17,
    /// <summary>SEV_RET_UNSUPPORTED.</summary>
    Unsupported = 21,
    /// <summary>SEV_RET_INVALID_PARAM (e.g. a CPUID page the SNP firmware rejects).</summary>
    InvalidParam = 22,
}

/// <summary>
/// A SEV / SEV-ES / SNP launch command (KVM_MEMORY_ENCRYPT_OP) failed. <see cref="KvmException.Errno"/> is the
/// kernel's answer; when it is EIO the firmware refused and <see cref="FirmwareError"/> says why (0 when the
/// firmware never ran).
/// </summary>
public sealed class SevCommandException : KvmException
{
    /// <summary>A failed command with the errno and the firmware status the kernel reported.</summary>
    public SevCommandException(string command, int errno, uint firmwareError, string request)
        : base(command, errno, request,
            $"{command} failed with {ErrnoInfo.NameOf(errno)} ({ErrnoInfo.Describe(errno)}), firmware status " +
            $"{(SevFirmwareStatus)firmwareError} (0x{firmwareError:X}): {request}")
    {
        FirmwareError = firmwareError;
    }

    /// <summary>kvm_sev_cmd.error as the kernel left it.</summary>
    public uint FirmwareError { get; }

    /// <summary><see cref="FirmwareError"/> as a named status.</summary>
    public SevFirmwareStatus FirmwareStatus => (SevFirmwareStatus)FirmwareError;
}

/// <summary>
/// A TDX launch command (KVM_MEMORY_ENCRYPT_OP with kvm_tdx_cmd) failed. <see cref="HardwareError"/> carries the TDX
/// module's SEAMCALL status where the kernel reports one (kvm_tdx_cmd.hw_error; 0 otherwise).
/// </summary>
public sealed class TdxCommandException : KvmException
{
    /// <summary>A failed command with the errno and kvm_tdx_cmd.hw_error.</summary>
    public TdxCommandException(string command, int errno, ulong hardwareError, string request)
        : base(command, errno, request,
            $"{command} failed with {ErrnoInfo.NameOf(errno)} ({ErrnoInfo.Describe(errno)}), hw_error 0x{hardwareError:X}: {request}")
    {
        HardwareError = hardwareError;
    }

    /// <summary>kvm_tdx_cmd.hw_error (the TDX module's status) as the kernel left it.</summary>
    public ulong HardwareError { get; }
}
