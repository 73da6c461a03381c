// SPDX-License-Identifier: MIT
// Robustness: garbage populate commands never throw and leave no descriptors.
using KvmSharp.Abi;

namespace KvmSharp.Emulation.Tests;

public sealed partial class PopulateTests
{
    [Fact]
    public void Garbage_commands_never_throw_and_leave_no_descriptors()
    {
        var rng = new Random(20260618);
        var scratch = Own(new UserBuffer(Ps));
        var src = Source(1, 0x77);
        foreach (uint type in new[] { KvmConstants.KVM_X86_TDX_VM, KvmConstants.KVM_X86_SNP_VM, KvmConstants.KVM_X86_DEFAULT_VM })
        {
            var (k, vm, _) = Setup(type);
            var vcpu = Vcpu(k, vm);
            if (type != KvmConstants.KVM_X86_DEFAULT_VM) MakePrivate(k, vm, Gpa, 2 * Ps);
            var bytes = new byte[64];
            for (int i = 0; i < 2000; i++)
            {
                // The sub-command struct: random, but aimed at the scratch page, an unmapped page or a kernel address
                // (never at arbitrary process memory, which copy_to_user would legitimately overwrite).
                var inner = new byte[64];
                rng.NextBytes(inner);
                if (rng.Next(3) == 0) BitConverter.GetBytes(src.Address + (ulong)rng.Next(2) * 8).CopyTo(inner, rng.Next(2) * 8);
                if (rng.Next(3) == 0) BitConverter.GetBytes(Gpa + (ulong)rng.Next(4) * Ps).CopyTo(inner, 8);
                scratch.WriteBytes(0, inner);
                rng.NextBytes(bytes);
                if (rng.Next(2) == 0) BitConverter.GetBytes((uint)rng.Next(0, 110)).CopyTo(bytes, 0);
                ulong data = rng.Next(4) switch { 0 => Ps, 1 => 1UL << 63, _ => scratch.Address };
                BitConverter.GetBytes(data).CopyTo(bytes, 8);
                if (rng.Next(2) == 0) Array.Clear(bytes, 16, 8);
                int len = rng.Next(0, bytes.Length + 1);
                var fd = rng.Next(2) == 0 ? vm : vcpu;
                long rc = k.Ioctl(fd, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, bytes.AsSpan(0, len));
                Assert.True(rc == 0 || (rc < 0 && rc >= -4095), $"rc {rc}");
            }
        }
    }
}
