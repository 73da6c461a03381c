// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation;

/// <summary>
/// KVM_CHECK_EXTENSION answers of the machine this project is developed on (Linux 6.18.44, kvm_pvm, x86_64) for the
/// capabilities the emulator does not model itself (IRQ chips, MSRs, Hyper-V …). Read once with LinuxKernel over
/// caps 0..299 on /dev/kvm and on a KVM_X86_DEFAULT_VM fd; caps absent here answered 0. The modeled caps
/// (guest_memfd, memslots, memory attributes, VM types, vCPU counts) are computed, never taken from here.
/// </summary>
internal static class HostCapabilitySnapshot
{
    public static readonly IReadOnlyDictionary<int, long> System = Build(vmFd: false);

    public static readonly IReadOnlyDictionary<int, long> Vm = Build(vmFd: true);

    private static Dictionary<int, long> Build(bool vmFd) => new()
    {
        [0] = 1, [1] = 1, [2] = 1, [4] = 1, [6] = 1, [7] = 1, [8] = 1, [11] = 1, [12] = 1, [14] = 1, [15] = 2, [16] = 1,
        [21] = 1, [22] = 1, [23] = 1, [24] = 1, [25] = 4096, [26] = 1, [30] = 1, [31] = 32, [32] = 1, [33] = 1,
        [34] = 1, [35] = 1, [36] = 1, [37] = 1, [39] = 14, [40] = 1, [41] = 1, [47] = 1, [50] = 1, [51] = 1, [54] = 1,
        [55] = 1, [56] = 1, [59] = 1, [61] = 1, [70] = 1, [72] = 1, [74] = 7, [76] = 1, [77] = 1, [82] = 1, [89] = 1,
        [95] = 1, [97] = 1, [98] = 1, [100] = 1, [105] = 1, [116] = 1, [121] = 1, [122] = 1, [127] = 1, [128] = 4096,
        // The only difference between the two fds on this host.
        [129] = vmFd ? 11 : 15,
        [136] = 1, [143] = 14, [153] = 1, [159] = 1, [162] = 1, [164] = 1, [168] = 3, [173] = 1, [182] = 1,
        [183] = 1, [184] = 1, [185] = 1, [187] = 1, [188] = 1, [189] = 1, [190] = 1, [192] = 1048576,
        [195] = 2031619, [197] = 1, [200] = 1, [201] = 4096, [203] = 1, [204] = 1, [206] = 1, [208] = 4096,
        [209] = 1, [213] = 1535, [215] = 1, [218] = 1, [220] = 1, [223] = 1048576, [226] = 1, [237] = 1, [238] = 1,
    };
}
