// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance;

/// <summary>The kernel under test cannot run this case (a missing capability or VM type); the message says why.</summary>
public sealed class SkipCaseException(string reason) : Exception(reason);
