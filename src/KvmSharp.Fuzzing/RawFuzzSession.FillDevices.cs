// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Argument buffers for device fds: KVM_CREATE_DEVICE (mostly kvm-vfio or a vGICv3, sometimes TEST, unknown types or
/// flags) and KVM_{SET,GET,HAS}_DEVICE_ATTR (small groups and attributes, the value a descriptor, an address or a
/// count in the sandbox).
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>KVM_CREATE_DEVICE and the device-attribute requests; false for any other request.</summary>
    private bool FillDevice(uint request, byte[] b)
    {
        if (request == KvmIoctls.KVM_CREATE_DEVICE) FillCreateDevice(b);
        else if (IsDeviceAttrRequest(request)) FillDeviceAttr(b);
        else return false;
        return true;
    }

    /// <summary>struct kvm_create_device: type, then flags (fd@4 is an output).</summary>
    private void FillCreateDevice(byte[] b)
    {
        U32(b, 0, _rng.Next(4) switch
        {
            0 => (uint)_rng.Next(0, 20),
            1 => (uint)Interesting(),
            _ => _rng.Next(2) == 0 ? KvmDeviceConstants.KVM_DEV_TYPE_VFIO : KvmDeviceConstants.KVM_DEV_TYPE_ARM_VGIC_V3,
        });
        U32(b, 8, _rng.Next(4) switch { 0 => KvmDeviceConstants.KVM_CREATE_DEVICE_TEST, 1 => (uint)Interesting(), _ => 0 });
    }

    /// <summary>struct kvm_device_attr: flags@0 group@4 attr@8 addr@16, addr mostly the sandbox holding the value.</summary>
    private void FillDeviceAttr(byte[] b)
    {
        U32(b, 4, (uint)(_rng.Next(4) == 0 ? Interesting() : (ulong)_rng.Next(0, 10)));
        U64(b, 8, _rng.Next(4) switch { 0 => Interesting(), 1 => (ulong)_rng.Next(0, 8) << 32, _ => (ulong)_rng.Next(0, 8) });
        // The value: a descriptor, an address, a count (the pointer itself is made safe in Shape).
        _sandbox.Write(0, BitConverter.GetBytes(_rng.Next(3) switch { 0 => Interesting(), 1 => (ulong)PickFd(), _ => 0x0800_0000UL }));
        U64(b, 16, _rng.Next(6) == 0 ? Interesting() : (ulong)_sandbox.Start);
    }
}
