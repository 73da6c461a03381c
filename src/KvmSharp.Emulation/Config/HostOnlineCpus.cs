// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation;

/// <summary>
/// num_online_cpus() of the machine running now: the CPUs in /sys/devices/system/cpu/online (a list of ranges such as
/// "0-1" or "0,2-5", drivers/base/cpu.c print_cpus_online). Not <see cref="Environment.ProcessorCount"/>, which .NET
/// takes from the process's affinity: under <c>taskset -c 0</c> it is 1 while the kernel still counts every online
/// CPU (probed on this host: KVM_CAP_NR_VCPUS 2 with and without taskset -c 0, /sys/devices/system/cpu/online "0-1").
/// </summary>
internal static class HostOnlineCpus
{
    private static readonly Lazy<int> s_count = new(Read);

    /// <summary>The count, or <see cref="Environment.ProcessorCount"/> when the file cannot be read or parsed.</summary>
    public static int Count => s_count.Value;

    private static int Read()
    {
        try
        {
            return Parse(File.ReadAllText("/sys/devices/system/cpu/online")) ?? Environment.ProcessorCount;
        }
        catch (IOException)
        {
            return Environment.ProcessorCount;
        }
        catch (UnauthorizedAccessException)
        {
            return Environment.ProcessorCount;
        }
    }

    /// <summary>The number of CPUs a cpulist names ("0-3,6" → 5); null when it is not one.</summary>
    internal static int? Parse(string cpulist)
    {
        int count = 0;
        foreach (string part in cpulist.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] ends = part.Split('-');
            if (ends.Length is < 1 or > 2 || !int.TryParse(ends[0], out int first)) return null;
            int last = first;
            if (ends.Length == 2 && !int.TryParse(ends[1], out last)) return null;
            if (first < 0 || last < first) return null;
            count += last - first + 1;
        }
        return count > 0 ? count : null;
    }
}
