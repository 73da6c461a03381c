// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli;

/// <summary>Which KVM module serves /dev/kvm, read from sysfs (a loaded module has a /sys/module/NAME directory).</summary>
public static class KvmModule
{
    // Vendor modules first: "kvm" alone is the generic core every one of them loads, so it only names the
    // module when no vendor module is there (e.g. arm64, where KVM is built in).
    private static readonly string[] VendorModules = ["kvm_intel", "kvm_amd", "kvm_pvm"];

    /// <summary>The vendor module(s) loaded under <paramref name="sysModule"/>, else "kvm", else "none".</summary>
    public static string Detect(string sysModule = "/sys/module")
    {
        var loaded = VendorModules.Where(name => Directory.Exists(Path.Combine(sysModule, name))).ToList();
        if (loaded.Count > 0) return string.Join(", ", loaded);
        return Directory.Exists(Path.Combine(sysModule, "kvm")) ? "kvm" : "none";
    }

    /// <summary>The running kernel's release (uname -r), or null when /proc is not there.</summary>
    public static string? KernelRelease()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
