// SPDX-License-Identifier: MIT
using System.IO.Compression;
using System.Reflection.PortableExecutable;

namespace KvmSharp.Packaging.Tests;

/// <summary>What an assembly in a package or an install folder was compiled to.</summary>
public static class PackagedAssembly
{
    /// <summary>ReadyToRun (precompiled by crossgen2): its CLI header points at a managed native header.</summary>
    public static bool IsReadyToRun(Stream assembly)
    {
        using var pe = new PEReader(assembly);
        return pe.PEHeaders.CorHeader is { ManagedNativeHeaderDirectory.Size: > 0 };
    }

    public static bool IsReadyToRun(ZipArchiveEntry entry)
    {
        using var stream = entry.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);   // PEReader needs a seekable stream
        copy.Position = 0;
        return IsReadyToRun(copy);
    }

    public static bool IsReadyToRun(string path)
    {
        using var stream = File.OpenRead(path);
        return IsReadyToRun(stream);
    }
}
