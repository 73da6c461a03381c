// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

/// <summary><c>struct kvm_mp_state</c>, 4 bytes (KVM_GET_MP_STATE / KVM_SET_MP_STATE): one KVM_MP_STATE_* value.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_mp_state
{
    public uint mp_state;
}

/// <summary>include/uapi/linux/kvm.h KVM_MP_STATE_*: the values of <see cref="kvm_mp_state.mp_state"/>.</summary>
public static class KvmMpState
{
    public const uint KVM_MP_STATE_RUNNABLE = 0;
    public const uint KVM_MP_STATE_UNINITIALIZED = 1;
    public const uint KVM_MP_STATE_INIT_RECEIVED = 2;
    public const uint KVM_MP_STATE_HALTED = 3;
    public const uint KVM_MP_STATE_SIPI_RECEIVED = 4;
    public const uint KVM_MP_STATE_STOPPED = 5;
    public const uint KVM_MP_STATE_CHECK_STOP = 6;
    public const uint KVM_MP_STATE_OPERATING = 7;
    public const uint KVM_MP_STATE_LOAD = 8;
    public const uint KVM_MP_STATE_AP_RESET_HOLD = 9;
    public const uint KVM_MP_STATE_SUSPENDED = 10;
}
