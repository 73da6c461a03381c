// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>PLACEHOLDER (helper "fpext" replaces it): FEAT_FHM, FEAT_FCMA, FEAT_JSCVT, FEAT_FRINTTS.</summary>
internal sealed partial class A64Interpreter
{
    private static bool TryFpExtensions(uint insn) => false;
}
