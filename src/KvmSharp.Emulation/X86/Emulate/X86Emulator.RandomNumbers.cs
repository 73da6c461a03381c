// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// RDRAND (0F C7 /6) and RDSEED (0F C7 /7, no F3 prefix): a random 16-, 32- or 64-bit value into the register (a
/// 32-bit destination zero-extends, a 16-bit one keeps bits 63:16), CF = 1 for "valid", OF, SF, ZF, AF and PF
/// cleared (Intel SDM Vol. 2B RDRAND/RDSEED, AMD APM Vol. 3). The emulator's source never runs dry, so CF is
/// always 1; the bytes come from the host's CSPRNG (RandomNumberGenerator), which a guest may use for keys.
/// <para>
/// CPUID gating: none, as upstream on SVM: the VMCB has no RDRAND/RDSEED intercept, so the CPU runs them whatever
/// the guest's KVM_SET_CPUID2 table says (vmx.c's RDRAND/RDSEED exiting, which turns them into #UD when the guest
/// lacks the bit, exists only on Intel). Both EPYC models this project runs on have them (/proc/cpuinfo: rdrand
/// rdseed), and kvm_pvm runs them natively too (RandomNumberInstructions cases). OVMF 2025.02 uses RDRAND in SEC.
/// </para>
/// </summary>
internal sealed partial class X86Emulator
{
    private void RandomNumber(in Instruction i, ref ulong f)
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        WriteReg(i.Op0Register, BitConverter.ToUInt64(bytes));
        f = (f & ~RFLAGS_ARITH) | RFLAGS_CF;
    }
}
