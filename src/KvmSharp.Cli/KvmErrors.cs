// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;

namespace KvmSharp.Cli;

/// <summary>One-line messages for kernel errors, with a hint where the usual cause is known.</summary>
public static class KvmErrors
{
    public static string OneLine(KvmException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        // Kvm.Open reports open(2) failures with the path in the request ("path=/dev/kvm flags=...").
        if (error.Operation == "open")
        {
            string line = $"cannot open {PathOf(error.Request)}: {error.ErrnoName} ({ErrnoInfo.Describe(error.ErrnoValue)})";
            return Hint(error.Errno) is string hint ? $"{line} — {hint}" : line;
        }
        // Calls without arguments (KVM_GET_API_VERSION) leave the request empty: drop the dangling ": ".
        return error.Message.ReplaceLineEndings(" ").TrimEnd(' ', ':');
    }

    private static string? Hint(Errno errno) => errno switch
    {
        Errno.EACCES or Errno.EPERM => "are you in the kvm group?",
        Errno.ENOENT => "is KVM enabled (kvm module loaded)?",
        Errno.ENXIO or Errno.ENODEV => "is virtualization enabled in firmware and the kvm vendor module loaded?",
        _ => null,
    };

    private static string PathOf(string request)
    {
        const string prefix = "path=";
        if (!request.StartsWith(prefix, StringComparison.Ordinal)) return request;
        int end = request.IndexOf(' ', StringComparison.Ordinal);
        return end < 0 ? request[prefix.Length..] : request[prefix.Length..end];
    }
}
