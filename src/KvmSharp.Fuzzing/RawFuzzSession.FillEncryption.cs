// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The argument of KVM_MEMORY_ENCRYPT_OP (SEV, SNP and TDX launch commands): the command header and the sub-command
/// struct it points at in the sandbox.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>The launch sub-command ids: SEV (0–22), SNP (100–102) and TDX (0–5), and a few unknown ones.</summary>
    private static readonly uint[] s_launchIds = [0, 1, 2, 3, 4, 5, 6, 7, 16, 21, 22, 23, 99, 100, 101, 102, 103];

    /// <summary>
    /// KVM_MEMORY_ENCRYPT_OP: a kvm_sev_cmd or kvm_tdx_cmd (same 24 bytes) whose data points at a sandbox page holding a
    /// sub-command struct — zeroed, random, or with plausible sizes (cpuid.nent, SNP page types, page-aligned lengths,
    /// TDX's GPAW entry) — and, for SEV, a sev_fd that is often the session's /dev/sev. False for any other request.
    /// </summary>
    private bool FillMemoryEncrypt(uint request, byte[] b, int fd)
    {
        if (request != KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP) return false;
        uint id = s_launchIds[_rng.Next(s_launchIds.Length)];
        U32(b, 0, id);
        U32(b, 4, _rng.Next(6) == 0 ? (uint)_rng.Next(4) : 0);
        ulong page = (ulong)_rng.Next(1, (int)UserSandbox.WritablePages);
        U64(b, 8, _rng.Next(8) switch { 0 => Interesting(), 1 => 0, _ => (ulong)_sandbox.Start + page * Ps });
        var param = new byte[Ps];
        switch (_rng.Next(4))
        {
            case 0: _rng.NextBytes(param); break;
            case 1: break; // all zero: the defaults (INIT2, policy 0, nent 0)
            default:
                // Plausible fields at the offsets the sub-commands share: lengths, counts, policies, types.
                U64(param, 0, _rng.Next(3) == 0 ? Interesting() : (ulong)_rng.Next(0x100, 0x110)); // gfn / uaddr / attributes
                U64(param, 8, _rng.Next(3) == 0 ? (ulong)_sandbox.Start + Ps * (ulong)_rng.Next(0, 16) : Ps * (ulong)_rng.Next(0, 3));
                U64(param, 16, Ps * (ulong)_rng.Next(0, 4)); // len / nr_pages
                param[24] = (byte)_rng.Next(8); // SNP page type
                U64(param, 0, _rng.Next(4) == 0 ? 1UL << 17 : GetU64(param, 0)); // SNP policy's must-be-one bit
                // kvm_tdx_init_vm.cpuid / kvm_tdx_capabilities.cpuid headers, with a GPAW entry after INIT_VM's.
                U32(param, 256, (uint)_rng.Next(0, 3));
                U32(param, 264, 0x8000_0008);
                U32(param, 264 + 12, (uint)(_rng.Next(2) == 0 ? 48 : 52) << 16);
                U32(param, 2048, (uint)_rng.Next(0, 8));
                break;
        }
        _sandbox.Write(page * Ps, param);
        bool sev = KindOf(fd) == FdKind.Vm && _rng.Next(2) == 0;
        if (sev)
        {
            U32(b, 16, (uint)_rng.Next(3)); // error: ignored on input
            int sevFd = _open.Where(o => o.Value == FdKind.Other).Select(o => o.Key).DefaultIfEmpty(-1).First();
            U32(b, 20, _rng.Next(4) != 0 && sevFd >= 0 ? (uint)sevFd : (uint)PickFd());
        }
        else
        {
            U64(b, 16, _rng.Next(8) == 0 ? (ulong)_rng.Next(1, 4) : 0); // hw_error must be 0
        }
        return true;
    }
}
