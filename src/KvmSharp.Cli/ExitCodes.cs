// SPDX-License-Identifier: MIT
namespace KvmSharp.Cli;

/// <summary>Process exit codes of every verb, so scripts can tell "KVM said no" from "you typed it wrong".</summary>
public static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The kernel refused (errno), or what was asked for is not available on it.</summary>
    public const int KernelError = 1;

    /// <summary>Bad command line: unknown option, bad value, options that do not go together.</summary>
    public const int Usage = 2;
}

/// <summary>An option combination the parser cannot reject by itself; reported on one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Something the chosen kernel does not offer (e.g. a VM type); reported on one line, exit code 1.</summary>
public sealed class UnavailableException(string message) : Exception(message);
