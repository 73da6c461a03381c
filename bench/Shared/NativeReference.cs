// SPDX-License-Identifier: MIT
using System.Reflection;
using System.Runtime.InteropServices;

namespace KvmSharp.Bench;

/// <summary>Loading of a benchmark's C reference library (lib&lt;name&gt;.so, copied next to the assembly by its build).</summary>
internal static class NativeReference
{
    /// <summary>
    /// Makes <c>[LibraryImport(library)]</c> in <paramref name="assembly"/> load lib<paramref name="library"/>.so from
    /// the assembly's folder, which is not on the loader's default search path when the benchmark runs from another
    /// working directory. One resolver per assembly: call it once, from the static constructor of the P/Invoke class.
    /// </summary>
    public static void ResolveNextToAssembly(Assembly assembly, string library) =>
        NativeLibrary.SetDllImportResolver(assembly, (name, asm, _) =>
        {
            if (name != library) return 0;
            string path = Path.Combine(Path.GetDirectoryName(asm.Location) ?? AppContext.BaseDirectory, $"lib{library}.so");
            return NativeLibrary.Load(path);
        });
}
