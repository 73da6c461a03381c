// SPDX-License-Identifier: MIT
using System.Text;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.VcpuStateRoundTrip"/>: the SET drawn by <see cref="VcpuStateOps"/>, then the GET into a buffer
/// prefilled with a pattern, every byte of which is shown. The state stays: later calls on the vCPU (KVM_GET_SREGS's
/// interrupt_bitmap, KVM_RUN) see it.
/// </summary>
public sealed partial class KernelSession
{
    private string VcpuStateRoundTrip(FuzzOp op)
    {
        var fd = Fd(op.Target);
        int kind = op.E & 7;
        var (set, get, size) = VcpuStateOps.Ioctls(kind);
        var text = new StringBuilder();
        if ((op.E & VcpuStateOps.CpuidFirst) != 0)
        {
            var table = CpuidBuffer(1, VcpuStateOps.CpuidTable(op.A));
            text.Append("cpuid ").Append(Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_SET_CPUID2, table))).Append(", ");
        }
        if ((op.E & VcpuStateOps.GetOnly) == 0)
            text.Append("set ").Append(Describe(_kernel.Ioctl(fd, set, VcpuStateOps.SetArgument(kind, op.A)))).Append(", ");
        var buffer = new byte[size];
        buffer.AsSpan().Fill(0xA5);
        long rc = _kernel.Ioctl(fd, get, buffer);
        text.Append("get ").Append(Describe(rc));
        if (rc == 0) text.Append(' ').Append(Convert.ToHexString(buffer));
        return text.ToString();
    }
}
