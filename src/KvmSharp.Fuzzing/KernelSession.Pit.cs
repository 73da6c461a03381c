// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The PIT calls of an irqchip session (<see cref="IrqchipOps"/>): half the sessions draw them, from a stream of their
/// own (so the session's other calls are the ones the seed always made), and make one now and then between the others:
/// KVM_CREATE_PIT, KVM_CREATE_PIT2 (KVM_PIT_SPEAKER_DUMMY, unknown bits, a dirty pad; again: EEXIST; without an irqchip
/// or with a split one: ENOENT), KVM_GET/SET_PIT(2) round trips of random states (<see cref="PitOps.Channel"/>: channel 0
/// never gets a timer that could fire), KVM_REINJECT_CONTROL, and each of them with a NULL argument (x86.c: EFAULT from
/// copy_from_user before the ENXIO of a missing PIT, except KVM_GET_PIT2, which looks for the PIT first). No guest runs
/// in a session, so nothing latches a live count: every field but channels 1 and 2's load times is compared.
/// </summary>
public sealed partial class KernelSession
{
    /// <summary>The session's PIT stream, or null for the half of the sessions without PIT calls; the first call is made here.</summary>
    private Random? PitPrologue(ulong seed, KernelFd vm, bool fullIrqchip, StringBuilder text)
    {
        var pit = new Random(unchecked((int)seed * 83 + 0x8254));
        if (pit.Next(2) != 0) return null;
        // Created at once on most full irqchips (the later calls then get past ENXIO), now and then elsewhere (ENOENT).
        if (pit.Next(8) < (fullIrqchip ? 7 : 2)) text.Append(PitCall(pit, vm, pick: 0)).Append(", ");
        return pit;
    }

    /// <summary>A PIT call before a third of the session's calls.</summary>
    private void PitBetweenCalls(Random? pit, KernelFd vm, StringBuilder text)
    {
        if (pit is null || pit.Next(3) != 0) return;
        text.Append(PitCall(pit, vm, pit.Next(8))).Append(", ");
    }

    private string PitCall(Random pit, KernelFd vm, int pick)
    {
        switch (pick)
        {
            case 0:
            {
                if (pit.Next(4) == 0) return "pit create " + Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT, 0UL));
                var cfg = new kvm_pit_config
                {
                    flags = pit.Next(5) switch
                    {
                        0 => 0,
                        1 => (uint)pit.NextInt64(0, 1L << 32),
                        2 => 1u << pit.Next(32),
                        _ => KvmConstants.KVM_PIT_SPEAKER_DUMMY,
                    },
                };
                if (pit.Next(6) == 0) cfg.pad[pit.Next(15)] = (uint)pit.Next();
                return string.Create(CultureInfo.InvariantCulture, $"pit create2 0x{cfg.flags:X} ") + Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_CREATE_PIT2, Bytes(ref cfg)));
            }
            case 1:
            {
                var ps = default(kvm_pit_state);
                long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_GET_PIT, Bytes(ref ps));
                return "pit get " + (rc == 0 ? PitOps.Describe(ps.channels) : Describe(rc));
            }
            case 2:
            {
                // KVM_GET_PIT2 zeroes reserved and flags before filling them in: dirty bytes must not show through.
                var ps = new kvm_pit_state2 { flags = 0xAAAA_AAAA };
                ps.reserved[pit.Next(9)] = 0xAAAA_AAAA;
                long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_GET_PIT2, Bytes(ref ps));
                return "pit get2 " + (rc == 0 ? PitState2(ps) : Describe(rc));
            }
            case 3:
            {
                var set = default(kvm_pit_state);
                for (int i = 0; i < 3; i++) set.channels[i] = PitOps.Channel(pit, i);
                long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_SET_PIT, Bytes(ref set));
                return "pit set " + Describe(rc) + " " + PitGet2(vm, set.channels);
            }
            case 4:
            {
                var set = new kvm_pit_state2 { flags = PitOps.Flags(pit) };
                for (int i = 0; i < 3; i++) set.channels[i] = PitOps.Channel(pit, i);
                if (pit.Next(4) == 0) set.reserved[pit.Next(9)] = (uint)pit.Next();
                long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_SET_PIT2, Bytes(ref set));
                return string.Create(CultureInfo.InvariantCulture, $"pit set2 0x{set.flags:X} ") + Describe(rc) + " " + PitGet2(vm, set.channels);
            }
            case 5:
            {
                var control = new kvm_reinject_control { pit_reinject = (byte)(pit.Next(4) == 0 ? pit.Next(0x100) : pit.Next(2)) };
                if (pit.Next(4) == 0) control.reserved[pit.Next(31)] = (byte)pit.Next(1, 0x100);
                return string.Create(CultureInfo.InvariantCulture, $"pit reinject {control.pit_reinject} ") + Describe(_kernel.Ioctl(vm, KvmIoctls.KVM_REINJECT_CONTROL, Bytes(ref control)));
            }
            case 6:
            {
                uint[] requests = [KvmIoctls.KVM_CREATE_PIT2, KvmIoctls.KVM_GET_PIT, KvmIoctls.KVM_SET_PIT, KvmIoctls.KVM_GET_PIT2, KvmIoctls.KVM_SET_PIT2, KvmIoctls.KVM_REINJECT_CONTROL];
                uint request = requests[pit.Next(requests.Length)];
                return $"pit {KvmIoctls.NameOf(request)}(NULL) " + Describe(_kernel.Ioctl(vm, request, 0UL));
            }
            default:
                // Creation again: EEXIST once there is a PIT, or the PIT a session without one makes late.
                return PitCall(pit, vm, 0);
        }
    }

    /// <summary>KVM_GET_PIT2 after a SET: the state as the kernel normalised it (0 counts, load times stamped or kept).</summary>
    private string PitGet2(KernelFd vm, in PitChannels3 set)
    {
        var ps = default(kvm_pit_state2);
        long rc = _kernel.Ioctl(vm, KvmIoctls.KVM_GET_PIT2, Bytes(ref ps));
        return "get2 " + (rc == 0 ? PitState2(ps, set) : Describe(rc));
    }

    private static string PitState2(in kvm_pit_state2 ps, PitChannels3? set = null)
    {
        uint reserved = 0;
        for (int i = 0; i < 9; i++) reserved |= ps.reserved[i];
        return string.Create(CultureInfo.InvariantCulture, $"flags=0x{ps.flags:X} reserved=0x{reserved:X}") + PitOps.Describe(ps.channels, set: set);
    }
}
