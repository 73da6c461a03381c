// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace KvmSharp.Cli.Preload;

/// <summary>
/// What a program started by <c>kvmsharp exec --kernel emulated</c> needs in its environment: LD_PRELOAD with the
/// preload library, and where that library finds .NET (libhostfxr.so of the runtime this command runs on, a
/// runtime configuration for it) and the bridge (KvmSharp.Cli.dll). The runtime configuration is written to a
/// temporary file, removed on Dispose.
/// </summary>
internal sealed class PreloadEnvironment : IDisposable
{
    private readonly string _library;
    private readonly string _hostfxr;
    private readonly string _runtimeConfig;
    private readonly string _assembly;
    private readonly string _kernelOptions;

    private PreloadEnvironment(string library, string hostfxr, string runtimeConfig, string assembly, string kernelOptions)
    {
        _library = library;
        _hostfxr = hostfxr;
        _runtimeConfig = runtimeConfig;
        _assembly = assembly;
        _kernelOptions = kernelOptions;
    }

    /// <exception cref="UnavailableException">The preload library was not built, or no hostfxr is found.</exception>
    public static PreloadEnvironment Prepare(IReadOnlyList<string> kernelOptions)
    {
        string directory = AppContext.BaseDirectory;
        string library = Path.Combine(directory, Commands.ExecCommand.PreloadLibrary);
        if (!File.Exists(library))
            throw new UnavailableException($"exec: {library} is missing (it is built with gcc with this command: was gcc missing at build time?)");
        if (!IsForThisArchitecture(library))
            throw new UnavailableException($"exec: {library} is built for another architecture than this process ({RuntimeInformation.ProcessArchitecture})");
        string assembly = Path.Combine(directory, "KvmSharp.Cli.dll");
        string hostfxr = FindHostfxr();
        // The runtime this command runs on, rolled forward to its newest patch as an app would be.
        string runtimeConfig = Path.Combine(Path.GetTempPath(), $"kvmsharp-exec-{Environment.ProcessId}-{Guid.NewGuid():N}.runtimeconfig.json");
        string release = $"{Environment.Version.Major}.{Environment.Version.Minor}";
        File.WriteAllText(runtimeConfig, "{\"runtimeOptions\":{\"tfm\":\"net" + release +
            "\",\"framework\":{\"name\":\"Microsoft.NETCore.App\",\"version\":\"" + release + ".0\"}}}");
        return new PreloadEnvironment(library, hostfxr, runtimeConfig, assembly, string.Join('\n', kernelOptions));
    }

    public void ApplyTo(ProcessStartInfo start)
    {
        string? existing = start.Environment.TryGetValue("LD_PRELOAD", out string? value) ? value : null;
        start.Environment["LD_PRELOAD"] = string.IsNullOrEmpty(existing) ? _library : $"{_library}:{existing}";
        start.Environment["KVMSHARP_PRELOAD_HOSTFXR"] = _hostfxr;
        start.Environment["KVMSHARP_PRELOAD_RUNTIMECONFIG"] = _runtimeConfig;
        start.Environment["KVMSHARP_PRELOAD_ASSEMBLY"] = _assembly;
        start.Environment[PreloadBridge.KernelOptionsVariable] = _kernelOptions;
    }

    public void Dispose() => File.Delete(_runtimeConfig);

    /// <summary>
    /// Whether the ELF file's e_machine is this process's architecture: the dynamic loader would ignore a preload
    /// library of another one with a warning, and the program would talk to the real kernel unawares.
    /// </summary>
    private static bool IsForThisArchitecture(string library)
    {
        Span<byte> header = stackalloc byte[20];
        using (var file = File.OpenRead(library))
        {
            if (file.Read(header) < header.Length) return false;
        }
        // include/uapi/linux/elf-em.h: EM_X86_64 62, EM_AARCH64 183; e_machine is the u16 at offset 18.
        ushort machine = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(header[18..]);
        return RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => machine == 62,
            Architecture.Arm64 => machine == 183,
            _ => false,
        };
    }

    /// <summary>host/fxr/VERSION/libhostfxr.so of the dotnet root this process runs from (the newest version there).</summary>
    private static string FindHostfxr()
    {
        // RuntimeEnvironment.GetRuntimeDirectory(): ROOT/shared/Microsoft.NETCore.App/VERSION/
        string runtime = RuntimeEnvironment.GetRuntimeDirectory().TrimEnd('/');
        string root = Path.GetFullPath(Path.Combine(runtime, "..", "..", ".."));
        string fxr = Path.Combine(root, "host", "fxr");
        var newest = Directory.Exists(fxr)
            ? Directory.GetDirectories(fxr)
                .Select(d => (Dir: d, Version: Version.TryParse(Path.GetFileName(d).Split('-')[0], out var v) ? v : null))
                .Where(d => d.Version is not null && File.Exists(Path.Combine(d.Dir, "libhostfxr.so")))
                .OrderByDescending(d => d.Version)
                .FirstOrDefault()
            : default;
        return newest.Dir is null
            ? throw new UnavailableException($"exec: no libhostfxr.so under {fxr}: cannot start .NET in the program")
            : Path.Combine(newest.Dir, "libhostfxr.so");
    }
}
