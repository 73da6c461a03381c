// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The arguments of KVM_X86_SET_MSR_FILTER (struct kvm_msr_filter) and KVM_(UN)REGISTER_COALESCED_MMIO (struct
/// kvm_coalesced_mmio_zone). Both requests are drawn from <see cref="OtherKvmRequests"/>, so the mix of the other
/// requests stays as it was.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>
    /// kvm_msr_filter: flags@0 (DEFAULT_DENY, 0 or anything), then 16 ranges of 24 bytes at 8 + 24 i (flags@0 nmsrs@4
    /// base@8 bitmap@16): a few used, READ/WRITE/both or anything, small or huge nmsrs, bitmaps in the sandbox (shaped
    /// there by <see cref="ShapeMsrFilter"/>). kvm_coalesced_mmio_zone: addr@0 size@8 pio@12. False for any other request.
    /// </summary>
    private bool FillMsrFilterOrZone(uint request, byte[] b)
    {
        if (request == KvmMsrFilter.KVM_X86_SET_MSR_FILTER && b.Length >= 8 + 16 * 24)
        {
            Array.Clear(b);
            U32(b, 0, _rng.Next(4) switch { 0 => (uint)Interesting(), 1 => KvmMsrFilter.KVM_MSR_FILTER_DEFAULT_DENY, _ => 0 });
            int used = _rng.Next(0, 5);
            for (int n = 0; n < used; n++)
            {
                int at = 8 + 24 * _rng.Next(16);
                U32(b, at, _rng.Next(5) == 0 ? (uint)Interesting() : (uint)_rng.Next(1, 4));
                U32(b, at + 4, _rng.Next(4) == 0 ? (uint)Interesting() : (uint)_rng.Next(1, 0x3001));
                U32(b, at + 8, _rng.Next(3) == 0 ? (uint)Interesting() : (uint)_rng.Next(0, 0x1000));
                U64(b, at + 16, _rng.Next(6) == 0 ? Interesting() : (ulong)_sandbox.Start + (ulong)_rng.Next(0, (int)Ps));
            }
            return true;
        }
        if ((request == KvmCoalescedMmio.KVM_REGISTER_COALESCED_MMIO || request == KvmCoalescedMmio.KVM_UNREGISTER_COALESCED_MMIO) && b.Length >= 16)
        {
            U64(b, 0, _rng.Next(3) == 0 ? Interesting() : 0x40_0000 + (ulong)_rng.Next(0, 0x2000));
            U32(b, 8, _rng.Next(3) == 0 ? (uint)Interesting() : (uint)_rng.Next(0, 0x1001));
            U32(b, 12, _rng.Next(6) == 0 ? (uint)Interesting() : (uint)_rng.Next(2));
            return true;
        }
        return false;
    }

    /// <summary>The bitmaps are read from this process (memdup_user): keep every one in the sandbox, whatever mutation made of it.</summary>
    private void ShapeMsrFilter(uint request, byte[] b)
    {
        if (request != KvmMsrFilter.KVM_X86_SET_MSR_FILTER) return;
        for (int at = 8 + 16; at + 8 <= b.Length && at < 8 + 16 * 24; at += 24) U64(b, at, SafeUserPointer(GetU64(b, at)));
    }
}
