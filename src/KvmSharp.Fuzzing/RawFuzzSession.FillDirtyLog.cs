// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Arguments of KVM_GET_DIRTY_LOG and KVM_CLEAR_DIRTY_LOG: mostly a slot the VM logs (the session remembers them), the
/// range and the mask of a clear, and a bitmap pointer kept inside the sandbox.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>
    /// kvm_dirty_log { slot, padding1, dirty_bitmap } / kvm_clear_dirty_log { slot, num_pages, first_page, dirty_bitmap };
    /// false for any other request.
    /// </summary>
    private bool FillDirtyLog(uint request, byte[] b, int fd)
    {
        if (request != KvmIoctls.KVM_GET_DIRTY_LOG && request != KvmIoctls.KVM_CLEAR_DIRTY_LOG) return false;
        bool clear = request == KvmIoctls.KVM_CLEAR_DIRTY_LOG;
        var logging = _loggingSlots.Where(l => l.Vm == fd).ToList();
        uint slot = logging.Count > 0 && _rng.Next(3) != 0 ? logging[_rng.Next(logging.Count)].Slot : (uint)_rng.Next(8);
        if (_rng.Next(8) == 0) slot |= (uint)_rng.Next(4) << 16;
        if (_rng.Next(16) == 0) slot = (uint)Interesting();
        U32(b, 0, slot);
        if (clear)
        {
            U32(b, 4, _rng.Next(6) switch { 0 => (uint)Interesting(), 1 => 0, 2 => 64, _ => (uint)_rng.Next(1, 9) });
            U64(b, 8, _rng.Next(6) switch { 0 => Interesting(), 1 => 64 * (ulong)_rng.Next(1, 4), 2 => (ulong)_rng.Next(1, 64), _ => 0 });
            // The mask a successful clear reads: the sandbox's first page, set to random bits.
            if (_rng.Next(4) == 0)
            {
                byte[] mask = new byte[64];
                _rng.NextBytes(mask);
                _sandbox.Write(0, mask);
            }
        }
        else if (_rng.Next(8) == 0)
        {
            U32(b, 4, (uint)Interesting()); // padding1: not checked
        }
        U64(b, clear ? 16 : 8, BitmapPointer());
        return true;
    }
}
