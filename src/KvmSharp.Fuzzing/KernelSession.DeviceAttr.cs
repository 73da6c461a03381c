// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.DeviceAttr"/>: the result of KVM_HAS/GET/SET_DEVICE_ATTR exactly and, for a GET on /dev/kvm into
/// the scratch page, the value. The value pointer lies in the session's scratch pages (<see cref="DirtyLogScratch"/>),
/// at NULL or in the kernel half, never in live memory of the fuzzer.
/// </summary>
public sealed partial class KernelSession
{
    private string DeviceAttr(FuzzOp op)
    {
        var fd = Fd(op.Target);
        var scratch = Scratch;
        var at = (DirtyBitmapAt)op.D;
        int request = DeviceAttrOps.Request(op.E);
        scratch.Fill(request == DeviceAttrOps.Set ? op.U : 0xA5A5A5A5A5A5A5A5);
        var attr = new kvm_device_attr { flags = (uint)op.C, group = (uint)op.A, attr = op.B, addr = scratch.Address(at, 0) };
        uint ioctl = request switch
        {
            DeviceAttrOps.Has => KvmIoctls.KVM_HAS_DEVICE_ATTR,
            DeviceAttrOps.Get => KvmIoctls.KVM_GET_DEVICE_ATTR,
            _ => KvmIoctls.KVM_SET_DEVICE_ATTR,
        };
        long rc = _kernel.Ioctl(fd, ioctl, Bytes(ref attr));
        string text = Describe(rc);
        if (rc == 0 && request == DeviceAttrOps.Get && at == DirtyBitmapAt.Scratch && (op.E & DeviceAttrOps.ShowValue) != 0)
            text += $" value=0x{BinaryPrimitives.ReadUInt64LittleEndian(scratch.Read(0, 8)):X}";
        return text;
    }
}
