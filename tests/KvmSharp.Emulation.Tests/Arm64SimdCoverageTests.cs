// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A sweep of the A64 Advanced SIMD and floating-point instruction forms (Arm ARM DDI 0487 C4.1 "Data Processing --
/// Scalar Floating-Point and Advanced SIMD" and the SIMD&amp;FP loads and stores): every ARMv8.0-A form with each
/// arrangement (integer, floating point, conversions, permutes, table lookups, loads and stores, the cryptographic
/// extension), plus FEAT_FP16 forms, FEAT_RDM (v8.1) and FEAT_DotProd (v8.2), as GNU assembly with the word
/// aarch64-linux-gnu-as gives for it. Each word runs alone on an emulated Neoverse-V1-like vCPU (every feature listed
/// is in its ID registers) with FP enabled and X1/X2 pointing into RAM, and must run to the end of the program: no
/// <see cref="UnsupportedInstructionStop"/> (KVM_EXIT_INTERNAL_ERROR) and no exception (an allocated, advertised form
/// is never UNDEFINED). The optional features the presets advertise in ID_AA64ISAR0/ISAR1_EL1 are swept on the preset
/// that has them: FEAT_FHM, FEAT_FCMA (FCMLA, FCADD, every arrangement, rotation and by-element index), FEAT_JSCVT
/// and FEAT_SHA512/SHA3/SM3/SM4 on Neoverse V1 and V2 (<see cref="FeatureForms"/>), FEAT_FRINTTS on Neoverse V2
/// (<see cref="V2Forms"/>). BF16 and I8MM have their own tests.
/// </summary>
public class Arm64SimdCoverageTests
{
    /// <summary>The forms: "assembly|word" (the word from aarch64-linux-gnu-as, .arch armv8.5-a+fp16+fp16fml+crypto+rdma+dotprod).</summary>
    private const string Forms = """
        shadd v0.8b, v1.8b, v2.8b|0e220420
        shadd v0.16b, v1.16b, v2.16b|4e220420
        shadd v0.4h, v1.4h, v2.4h|0e620420
        shadd v0.8h, v1.8h, v2.8h|4e620420
        shadd v0.2s, v1.2s, v2.2s|0ea20420
        shadd v0.4s, v1.4s, v2.4s|4ea20420
        uhadd v0.8b, v1.8b, v2.8b|2e220420
        uhadd v0.16b, v1.16b, v2.16b|6e220420
        uhadd v0.4h, v1.4h, v2.4h|2e620420
        uhadd v0.8h, v1.8h, v2.8h|6e620420
        uhadd v0.2s, v1.2s, v2.2s|2ea20420
        uhadd v0.4s, v1.4s, v2.4s|6ea20420
        srhadd v0.8b, v1.8b, v2.8b|0e221420
        srhadd v0.16b, v1.16b, v2.16b|4e221420
        srhadd v0.4h, v1.4h, v2.4h|0e621420
        srhadd v0.8h, v1.8h, v2.8h|4e621420
        srhadd v0.2s, v1.2s, v2.2s|0ea21420
        srhadd v0.4s, v1.4s, v2.4s|4ea21420
        urhadd v0.8b, v1.8b, v2.8b|2e221420
        urhadd v0.16b, v1.16b, v2.16b|6e221420
        urhadd v0.4h, v1.4h, v2.4h|2e621420
        urhadd v0.8h, v1.8h, v2.8h|6e621420
        urhadd v0.2s, v1.2s, v2.2s|2ea21420
        urhadd v0.4s, v1.4s, v2.4s|6ea21420
        shsub v0.8b, v1.8b, v2.8b|0e222420
        shsub v0.16b, v1.16b, v2.16b|4e222420
        shsub v0.4h, v1.4h, v2.4h|0e622420
        shsub v0.8h, v1.8h, v2.8h|4e622420
        shsub v0.2s, v1.2s, v2.2s|0ea22420
        shsub v0.4s, v1.4s, v2.4s|4ea22420
        uhsub v0.8b, v1.8b, v2.8b|2e222420
        uhsub v0.16b, v1.16b, v2.16b|6e222420
        uhsub v0.4h, v1.4h, v2.4h|2e622420
        uhsub v0.8h, v1.8h, v2.8h|6e622420
        uhsub v0.2s, v1.2s, v2.2s|2ea22420
        uhsub v0.4s, v1.4s, v2.4s|6ea22420
        smax v0.8b, v1.8b, v2.8b|0e226420
        smax v0.16b, v1.16b, v2.16b|4e226420
        smax v0.4h, v1.4h, v2.4h|0e626420
        smax v0.8h, v1.8h, v2.8h|4e626420
        smax v0.2s, v1.2s, v2.2s|0ea26420
        smax v0.4s, v1.4s, v2.4s|4ea26420
        umax v0.8b, v1.8b, v2.8b|2e226420
        umax v0.16b, v1.16b, v2.16b|6e226420
        umax v0.4h, v1.4h, v2.4h|2e626420
        umax v0.8h, v1.8h, v2.8h|6e626420
        umax v0.2s, v1.2s, v2.2s|2ea26420
        umax v0.4s, v1.4s, v2.4s|6ea26420
        smin v0.8b, v1.8b, v2.8b|0e226c20
        smin v0.16b, v1.16b, v2.16b|4e226c20
        smin v0.4h, v1.4h, v2.4h|0e626c20
        smin v0.8h, v1.8h, v2.8h|4e626c20
        smin v0.2s, v1.2s, v2.2s|0ea26c20
        smin v0.4s, v1.4s, v2.4s|4ea26c20
        umin v0.8b, v1.8b, v2.8b|2e226c20
        umin v0.16b, v1.16b, v2.16b|6e226c20
        umin v0.4h, v1.4h, v2.4h|2e626c20
        umin v0.8h, v1.8h, v2.8h|6e626c20
        umin v0.2s, v1.2s, v2.2s|2ea26c20
        umin v0.4s, v1.4s, v2.4s|6ea26c20
        sabd v0.8b, v1.8b, v2.8b|0e227420
        sabd v0.16b, v1.16b, v2.16b|4e227420
        sabd v0.4h, v1.4h, v2.4h|0e627420
        sabd v0.8h, v1.8h, v2.8h|4e627420
        sabd v0.2s, v1.2s, v2.2s|0ea27420
        sabd v0.4s, v1.4s, v2.4s|4ea27420
        uabd v0.8b, v1.8b, v2.8b|2e227420
        uabd v0.16b, v1.16b, v2.16b|6e227420
        uabd v0.4h, v1.4h, v2.4h|2e627420
        uabd v0.8h, v1.8h, v2.8h|6e627420
        uabd v0.2s, v1.2s, v2.2s|2ea27420
        uabd v0.4s, v1.4s, v2.4s|6ea27420
        saba v0.8b, v1.8b, v2.8b|0e227c20
        saba v0.16b, v1.16b, v2.16b|4e227c20
        saba v0.4h, v1.4h, v2.4h|0e627c20
        saba v0.8h, v1.8h, v2.8h|4e627c20
        saba v0.2s, v1.2s, v2.2s|0ea27c20
        saba v0.4s, v1.4s, v2.4s|4ea27c20
        uaba v0.8b, v1.8b, v2.8b|2e227c20
        uaba v0.16b, v1.16b, v2.16b|6e227c20
        uaba v0.4h, v1.4h, v2.4h|2e627c20
        uaba v0.8h, v1.8h, v2.8h|6e627c20
        uaba v0.2s, v1.2s, v2.2s|2ea27c20
        uaba v0.4s, v1.4s, v2.4s|6ea27c20
        mla v0.8b, v1.8b, v2.8b|0e229420
        mla v0.16b, v1.16b, v2.16b|4e229420
        mla v0.4h, v1.4h, v2.4h|0e629420
        mla v0.8h, v1.8h, v2.8h|4e629420
        mla v0.2s, v1.2s, v2.2s|0ea29420
        mla v0.4s, v1.4s, v2.4s|4ea29420
        mls v0.8b, v1.8b, v2.8b|2e229420
        mls v0.16b, v1.16b, v2.16b|6e229420
        mls v0.4h, v1.4h, v2.4h|2e629420
        mls v0.8h, v1.8h, v2.8h|6e629420
        mls v0.2s, v1.2s, v2.2s|2ea29420
        mls v0.4s, v1.4s, v2.4s|6ea29420
        mul v0.8b, v1.8b, v2.8b|0e229c20
        mul v0.16b, v1.16b, v2.16b|4e229c20
        mul v0.4h, v1.4h, v2.4h|0e629c20
        mul v0.8h, v1.8h, v2.8h|4e629c20
        mul v0.2s, v1.2s, v2.2s|0ea29c20
        mul v0.4s, v1.4s, v2.4s|4ea29c20
        smaxp v0.8b, v1.8b, v2.8b|0e22a420
        smaxp v0.16b, v1.16b, v2.16b|4e22a420
        smaxp v0.4h, v1.4h, v2.4h|0e62a420
        smaxp v0.8h, v1.8h, v2.8h|4e62a420
        smaxp v0.2s, v1.2s, v2.2s|0ea2a420
        smaxp v0.4s, v1.4s, v2.4s|4ea2a420
        umaxp v0.8b, v1.8b, v2.8b|2e22a420
        umaxp v0.16b, v1.16b, v2.16b|6e22a420
        umaxp v0.4h, v1.4h, v2.4h|2e62a420
        umaxp v0.8h, v1.8h, v2.8h|6e62a420
        umaxp v0.2s, v1.2s, v2.2s|2ea2a420
        umaxp v0.4s, v1.4s, v2.4s|6ea2a420
        sminp v0.8b, v1.8b, v2.8b|0e22ac20
        sminp v0.16b, v1.16b, v2.16b|4e22ac20
        sminp v0.4h, v1.4h, v2.4h|0e62ac20
        sminp v0.8h, v1.8h, v2.8h|4e62ac20
        sminp v0.2s, v1.2s, v2.2s|0ea2ac20
        sminp v0.4s, v1.4s, v2.4s|4ea2ac20
        uminp v0.8b, v1.8b, v2.8b|2e22ac20
        uminp v0.16b, v1.16b, v2.16b|6e22ac20
        uminp v0.4h, v1.4h, v2.4h|2e62ac20
        uminp v0.8h, v1.8h, v2.8h|6e62ac20
        uminp v0.2s, v1.2s, v2.2s|2ea2ac20
        uminp v0.4s, v1.4s, v2.4s|6ea2ac20
        sqadd v0.8b, v1.8b, v2.8b|0e220c20
        sqadd v0.16b, v1.16b, v2.16b|4e220c20
        sqadd v0.4h, v1.4h, v2.4h|0e620c20
        sqadd v0.8h, v1.8h, v2.8h|4e620c20
        sqadd v0.2s, v1.2s, v2.2s|0ea20c20
        sqadd v0.4s, v1.4s, v2.4s|4ea20c20
        sqadd v0.2d, v1.2d, v2.2d|4ee20c20
        uqadd v0.8b, v1.8b, v2.8b|2e220c20
        uqadd v0.16b, v1.16b, v2.16b|6e220c20
        uqadd v0.4h, v1.4h, v2.4h|2e620c20
        uqadd v0.8h, v1.8h, v2.8h|6e620c20
        uqadd v0.2s, v1.2s, v2.2s|2ea20c20
        uqadd v0.4s, v1.4s, v2.4s|6ea20c20
        uqadd v0.2d, v1.2d, v2.2d|6ee20c20
        sqsub v0.8b, v1.8b, v2.8b|0e222c20
        sqsub v0.16b, v1.16b, v2.16b|4e222c20
        sqsub v0.4h, v1.4h, v2.4h|0e622c20
        sqsub v0.8h, v1.8h, v2.8h|4e622c20
        sqsub v0.2s, v1.2s, v2.2s|0ea22c20
        sqsub v0.4s, v1.4s, v2.4s|4ea22c20
        sqsub v0.2d, v1.2d, v2.2d|4ee22c20
        uqsub v0.8b, v1.8b, v2.8b|2e222c20
        uqsub v0.16b, v1.16b, v2.16b|6e222c20
        uqsub v0.4h, v1.4h, v2.4h|2e622c20
        uqsub v0.8h, v1.8h, v2.8h|6e622c20
        uqsub v0.2s, v1.2s, v2.2s|2ea22c20
        uqsub v0.4s, v1.4s, v2.4s|6ea22c20
        uqsub v0.2d, v1.2d, v2.2d|6ee22c20
        cmgt v0.8b, v1.8b, v2.8b|0e223420
        cmgt v0.16b, v1.16b, v2.16b|4e223420
        cmgt v0.4h, v1.4h, v2.4h|0e623420
        cmgt v0.8h, v1.8h, v2.8h|4e623420
        cmgt v0.2s, v1.2s, v2.2s|0ea23420
        cmgt v0.4s, v1.4s, v2.4s|4ea23420
        cmgt v0.2d, v1.2d, v2.2d|4ee23420
        cmhi v0.8b, v1.8b, v2.8b|2e223420
        cmhi v0.16b, v1.16b, v2.16b|6e223420
        cmhi v0.4h, v1.4h, v2.4h|2e623420
        cmhi v0.8h, v1.8h, v2.8h|6e623420
        cmhi v0.2s, v1.2s, v2.2s|2ea23420
        cmhi v0.4s, v1.4s, v2.4s|6ea23420
        cmhi v0.2d, v1.2d, v2.2d|6ee23420
        cmge v0.8b, v1.8b, v2.8b|0e223c20
        cmge v0.16b, v1.16b, v2.16b|4e223c20
        cmge v0.4h, v1.4h, v2.4h|0e623c20
        cmge v0.8h, v1.8h, v2.8h|4e623c20
        cmge v0.2s, v1.2s, v2.2s|0ea23c20
        cmge v0.4s, v1.4s, v2.4s|4ea23c20
        cmge v0.2d, v1.2d, v2.2d|4ee23c20
        cmhs v0.8b, v1.8b, v2.8b|2e223c20
        cmhs v0.16b, v1.16b, v2.16b|6e223c20
        cmhs v0.4h, v1.4h, v2.4h|2e623c20
        cmhs v0.8h, v1.8h, v2.8h|6e623c20
        cmhs v0.2s, v1.2s, v2.2s|2ea23c20
        cmhs v0.4s, v1.4s, v2.4s|6ea23c20
        cmhs v0.2d, v1.2d, v2.2d|6ee23c20
        sshl v0.8b, v1.8b, v2.8b|0e224420
        sshl v0.16b, v1.16b, v2.16b|4e224420
        sshl v0.4h, v1.4h, v2.4h|0e624420
        sshl v0.8h, v1.8h, v2.8h|4e624420
        sshl v0.2s, v1.2s, v2.2s|0ea24420
        sshl v0.4s, v1.4s, v2.4s|4ea24420
        sshl v0.2d, v1.2d, v2.2d|4ee24420
        ushl v0.8b, v1.8b, v2.8b|2e224420
        ushl v0.16b, v1.16b, v2.16b|6e224420
        ushl v0.4h, v1.4h, v2.4h|2e624420
        ushl v0.8h, v1.8h, v2.8h|6e624420
        ushl v0.2s, v1.2s, v2.2s|2ea24420
        ushl v0.4s, v1.4s, v2.4s|6ea24420
        ushl v0.2d, v1.2d, v2.2d|6ee24420
        sqshl v0.8b, v1.8b, v2.8b|0e224c20
        sqshl v0.16b, v1.16b, v2.16b|4e224c20
        sqshl v0.4h, v1.4h, v2.4h|0e624c20
        sqshl v0.8h, v1.8h, v2.8h|4e624c20
        sqshl v0.2s, v1.2s, v2.2s|0ea24c20
        sqshl v0.4s, v1.4s, v2.4s|4ea24c20
        sqshl v0.2d, v1.2d, v2.2d|4ee24c20
        uqshl v0.8b, v1.8b, v2.8b|2e224c20
        uqshl v0.16b, v1.16b, v2.16b|6e224c20
        uqshl v0.4h, v1.4h, v2.4h|2e624c20
        uqshl v0.8h, v1.8h, v2.8h|6e624c20
        uqshl v0.2s, v1.2s, v2.2s|2ea24c20
        uqshl v0.4s, v1.4s, v2.4s|6ea24c20
        uqshl v0.2d, v1.2d, v2.2d|6ee24c20
        srshl v0.8b, v1.8b, v2.8b|0e225420
        srshl v0.16b, v1.16b, v2.16b|4e225420
        srshl v0.4h, v1.4h, v2.4h|0e625420
        srshl v0.8h, v1.8h, v2.8h|4e625420
        srshl v0.2s, v1.2s, v2.2s|0ea25420
        srshl v0.4s, v1.4s, v2.4s|4ea25420
        srshl v0.2d, v1.2d, v2.2d|4ee25420
        urshl v0.8b, v1.8b, v2.8b|2e225420
        urshl v0.16b, v1.16b, v2.16b|6e225420
        urshl v0.4h, v1.4h, v2.4h|2e625420
        urshl v0.8h, v1.8h, v2.8h|6e625420
        urshl v0.2s, v1.2s, v2.2s|2ea25420
        urshl v0.4s, v1.4s, v2.4s|6ea25420
        urshl v0.2d, v1.2d, v2.2d|6ee25420
        sqrshl v0.8b, v1.8b, v2.8b|0e225c20
        sqrshl v0.16b, v1.16b, v2.16b|4e225c20
        sqrshl v0.4h, v1.4h, v2.4h|0e625c20
        sqrshl v0.8h, v1.8h, v2.8h|4e625c20
        sqrshl v0.2s, v1.2s, v2.2s|0ea25c20
        sqrshl v0.4s, v1.4s, v2.4s|4ea25c20
        sqrshl v0.2d, v1.2d, v2.2d|4ee25c20
        uqrshl v0.8b, v1.8b, v2.8b|2e225c20
        uqrshl v0.16b, v1.16b, v2.16b|6e225c20
        uqrshl v0.4h, v1.4h, v2.4h|2e625c20
        uqrshl v0.8h, v1.8h, v2.8h|6e625c20
        uqrshl v0.2s, v1.2s, v2.2s|2ea25c20
        uqrshl v0.4s, v1.4s, v2.4s|6ea25c20
        uqrshl v0.2d, v1.2d, v2.2d|6ee25c20
        add v0.8b, v1.8b, v2.8b|0e228420
        add v0.16b, v1.16b, v2.16b|4e228420
        add v0.4h, v1.4h, v2.4h|0e628420
        add v0.8h, v1.8h, v2.8h|4e628420
        add v0.2s, v1.2s, v2.2s|0ea28420
        add v0.4s, v1.4s, v2.4s|4ea28420
        add v0.2d, v1.2d, v2.2d|4ee28420
        sub v0.8b, v1.8b, v2.8b|2e228420
        sub v0.16b, v1.16b, v2.16b|6e228420
        sub v0.4h, v1.4h, v2.4h|2e628420
        sub v0.8h, v1.8h, v2.8h|6e628420
        sub v0.2s, v1.2s, v2.2s|2ea28420
        sub v0.4s, v1.4s, v2.4s|6ea28420
        sub v0.2d, v1.2d, v2.2d|6ee28420
        cmtst v0.8b, v1.8b, v2.8b|0e228c20
        cmtst v0.16b, v1.16b, v2.16b|4e228c20
        cmtst v0.4h, v1.4h, v2.4h|0e628c20
        cmtst v0.8h, v1.8h, v2.8h|4e628c20
        cmtst v0.2s, v1.2s, v2.2s|0ea28c20
        cmtst v0.4s, v1.4s, v2.4s|4ea28c20
        cmtst v0.2d, v1.2d, v2.2d|4ee28c20
        cmeq v0.8b, v1.8b, v2.8b|2e228c20
        cmeq v0.16b, v1.16b, v2.16b|6e228c20
        cmeq v0.4h, v1.4h, v2.4h|2e628c20
        cmeq v0.8h, v1.8h, v2.8h|6e628c20
        cmeq v0.2s, v1.2s, v2.2s|2ea28c20
        cmeq v0.4s, v1.4s, v2.4s|6ea28c20
        cmeq v0.2d, v1.2d, v2.2d|6ee28c20
        addp v0.8b, v1.8b, v2.8b|0e22bc20
        addp v0.16b, v1.16b, v2.16b|4e22bc20
        addp v0.4h, v1.4h, v2.4h|0e62bc20
        addp v0.8h, v1.8h, v2.8h|4e62bc20
        addp v0.2s, v1.2s, v2.2s|0ea2bc20
        addp v0.4s, v1.4s, v2.4s|4ea2bc20
        addp v0.2d, v1.2d, v2.2d|4ee2bc20
        sqdmulh v0.4h, v1.4h, v2.4h|0e62b420
        sqdmulh v0.8h, v1.8h, v2.8h|4e62b420
        sqdmulh v0.2s, v1.2s, v2.2s|0ea2b420
        sqdmulh v0.4s, v1.4s, v2.4s|4ea2b420
        sqrdmulh v0.4h, v1.4h, v2.4h|2e62b420
        sqrdmulh v0.8h, v1.8h, v2.8h|6e62b420
        sqrdmulh v0.2s, v1.2s, v2.2s|2ea2b420
        sqrdmulh v0.4s, v1.4s, v2.4s|6ea2b420
        sqrdmlah v0.4h, v1.4h, v2.4h|2e428420
        sqrdmlah v0.8h, v1.8h, v2.8h|6e428420
        sqrdmlah v0.2s, v1.2s, v2.2s|2e828420
        sqrdmlah v0.4s, v1.4s, v2.4s|6e828420
        sqrdmlsh v0.4h, v1.4h, v2.4h|2e428c20
        sqrdmlsh v0.8h, v1.8h, v2.8h|6e428c20
        sqrdmlsh v0.2s, v1.2s, v2.2s|2e828c20
        sqrdmlsh v0.4s, v1.4s, v2.4s|6e828c20
        pmul v0.8b, v1.8b, v2.8b|2e229c20
        pmul v0.16b, v1.16b, v2.16b|6e229c20
        and v0.8b, v1.8b, v2.8b|0e221c20
        and v0.16b, v1.16b, v2.16b|4e221c20
        bic v0.8b, v1.8b, v2.8b|0e621c20
        bic v0.16b, v1.16b, v2.16b|4e621c20
        orr v0.8b, v1.8b, v2.8b|0ea21c20
        orr v0.16b, v1.16b, v2.16b|4ea21c20
        orn v0.8b, v1.8b, v2.8b|0ee21c20
        orn v0.16b, v1.16b, v2.16b|4ee21c20
        eor v0.8b, v1.8b, v2.8b|2e221c20
        eor v0.16b, v1.16b, v2.16b|6e221c20
        bsl v0.8b, v1.8b, v2.8b|2e621c20
        bsl v0.16b, v1.16b, v2.16b|6e621c20
        bit v0.8b, v1.8b, v2.8b|2ea21c20
        bit v0.16b, v1.16b, v2.16b|6ea21c20
        bif v0.8b, v1.8b, v2.8b|2ee21c20
        bif v0.16b, v1.16b, v2.16b|6ee21c20
        mov v0.16b, v1.16b|4ea11c20
        fmaxnm v0.2s, v1.2s, v2.2s|0e22c420
        fmaxnm v0.4s, v1.4s, v2.4s|4e22c420
        fmaxnm v0.2d, v1.2d, v2.2d|4e62c420
        fmaxnm v0.4h, v1.4h, v2.4h|0e420420
        fmaxnm v0.8h, v1.8h, v2.8h|4e420420
        fmla v0.2s, v1.2s, v2.2s|0e22cc20
        fmla v0.4s, v1.4s, v2.4s|4e22cc20
        fmla v0.2d, v1.2d, v2.2d|4e62cc20
        fmla v0.4h, v1.4h, v2.4h|0e420c20
        fmla v0.8h, v1.8h, v2.8h|4e420c20
        fadd v0.2s, v1.2s, v2.2s|0e22d420
        fadd v0.4s, v1.4s, v2.4s|4e22d420
        fadd v0.2d, v1.2d, v2.2d|4e62d420
        fadd v0.4h, v1.4h, v2.4h|0e421420
        fadd v0.8h, v1.8h, v2.8h|4e421420
        fmulx v0.2s, v1.2s, v2.2s|0e22dc20
        fmulx v0.4s, v1.4s, v2.4s|4e22dc20
        fmulx v0.2d, v1.2d, v2.2d|4e62dc20
        fmulx v0.4h, v1.4h, v2.4h|0e421c20
        fmulx v0.8h, v1.8h, v2.8h|4e421c20
        fcmeq v0.2s, v1.2s, v2.2s|0e22e420
        fcmeq v0.4s, v1.4s, v2.4s|4e22e420
        fcmeq v0.2d, v1.2d, v2.2d|4e62e420
        fcmeq v0.4h, v1.4h, v2.4h|0e422420
        fcmeq v0.8h, v1.8h, v2.8h|4e422420
        fmax v0.2s, v1.2s, v2.2s|0e22f420
        fmax v0.4s, v1.4s, v2.4s|4e22f420
        fmax v0.2d, v1.2d, v2.2d|4e62f420
        fmax v0.4h, v1.4h, v2.4h|0e423420
        fmax v0.8h, v1.8h, v2.8h|4e423420
        frecps v0.2s, v1.2s, v2.2s|0e22fc20
        frecps v0.4s, v1.4s, v2.4s|4e22fc20
        frecps v0.2d, v1.2d, v2.2d|4e62fc20
        frecps v0.4h, v1.4h, v2.4h|0e423c20
        frecps v0.8h, v1.8h, v2.8h|4e423c20
        fminnm v0.2s, v1.2s, v2.2s|0ea2c420
        fminnm v0.4s, v1.4s, v2.4s|4ea2c420
        fminnm v0.2d, v1.2d, v2.2d|4ee2c420
        fminnm v0.4h, v1.4h, v2.4h|0ec20420
        fminnm v0.8h, v1.8h, v2.8h|4ec20420
        fmls v0.2s, v1.2s, v2.2s|0ea2cc20
        fmls v0.4s, v1.4s, v2.4s|4ea2cc20
        fmls v0.2d, v1.2d, v2.2d|4ee2cc20
        fmls v0.4h, v1.4h, v2.4h|0ec20c20
        fmls v0.8h, v1.8h, v2.8h|4ec20c20
        fsub v0.2s, v1.2s, v2.2s|0ea2d420
        fsub v0.4s, v1.4s, v2.4s|4ea2d420
        fsub v0.2d, v1.2d, v2.2d|4ee2d420
        fsub v0.4h, v1.4h, v2.4h|0ec21420
        fsub v0.8h, v1.8h, v2.8h|4ec21420
        fmin v0.2s, v1.2s, v2.2s|0ea2f420
        fmin v0.4s, v1.4s, v2.4s|4ea2f420
        fmin v0.2d, v1.2d, v2.2d|4ee2f420
        fmin v0.4h, v1.4h, v2.4h|0ec23420
        fmin v0.8h, v1.8h, v2.8h|4ec23420
        frsqrts v0.2s, v1.2s, v2.2s|0ea2fc20
        frsqrts v0.4s, v1.4s, v2.4s|4ea2fc20
        frsqrts v0.2d, v1.2d, v2.2d|4ee2fc20
        frsqrts v0.4h, v1.4h, v2.4h|0ec23c20
        frsqrts v0.8h, v1.8h, v2.8h|4ec23c20
        fmaxnmp v0.2s, v1.2s, v2.2s|2e22c420
        fmaxnmp v0.4s, v1.4s, v2.4s|6e22c420
        fmaxnmp v0.2d, v1.2d, v2.2d|6e62c420
        fmaxnmp v0.4h, v1.4h, v2.4h|2e420420
        fmaxnmp v0.8h, v1.8h, v2.8h|6e420420
        faddp v0.2s, v1.2s, v2.2s|2e22d420
        faddp v0.4s, v1.4s, v2.4s|6e22d420
        faddp v0.2d, v1.2d, v2.2d|6e62d420
        faddp v0.4h, v1.4h, v2.4h|2e421420
        faddp v0.8h, v1.8h, v2.8h|6e421420
        fmul v0.2s, v1.2s, v2.2s|2e22dc20
        fmul v0.4s, v1.4s, v2.4s|6e22dc20
        fmul v0.2d, v1.2d, v2.2d|6e62dc20
        fmul v0.4h, v1.4h, v2.4h|2e421c20
        fmul v0.8h, v1.8h, v2.8h|6e421c20
        fcmge v0.2s, v1.2s, v2.2s|2e22e420
        fcmge v0.4s, v1.4s, v2.4s|6e22e420
        fcmge v0.2d, v1.2d, v2.2d|6e62e420
        fcmge v0.4h, v1.4h, v2.4h|2e422420
        fcmge v0.8h, v1.8h, v2.8h|6e422420
        facge v0.2s, v1.2s, v2.2s|2e22ec20
        facge v0.4s, v1.4s, v2.4s|6e22ec20
        facge v0.2d, v1.2d, v2.2d|6e62ec20
        facge v0.4h, v1.4h, v2.4h|2e422c20
        facge v0.8h, v1.8h, v2.8h|6e422c20
        fmaxp v0.2s, v1.2s, v2.2s|2e22f420
        fmaxp v0.4s, v1.4s, v2.4s|6e22f420
        fmaxp v0.2d, v1.2d, v2.2d|6e62f420
        fmaxp v0.4h, v1.4h, v2.4h|2e423420
        fmaxp v0.8h, v1.8h, v2.8h|6e423420
        fdiv v0.2s, v1.2s, v2.2s|2e22fc20
        fdiv v0.4s, v1.4s, v2.4s|6e22fc20
        fdiv v0.2d, v1.2d, v2.2d|6e62fc20
        fdiv v0.4h, v1.4h, v2.4h|2e423c20
        fdiv v0.8h, v1.8h, v2.8h|6e423c20
        fminnmp v0.2s, v1.2s, v2.2s|2ea2c420
        fminnmp v0.4s, v1.4s, v2.4s|6ea2c420
        fminnmp v0.2d, v1.2d, v2.2d|6ee2c420
        fminnmp v0.4h, v1.4h, v2.4h|2ec20420
        fminnmp v0.8h, v1.8h, v2.8h|6ec20420
        fabd v0.2s, v1.2s, v2.2s|2ea2d420
        fabd v0.4s, v1.4s, v2.4s|6ea2d420
        fabd v0.2d, v1.2d, v2.2d|6ee2d420
        fabd v0.4h, v1.4h, v2.4h|2ec21420
        fabd v0.8h, v1.8h, v2.8h|6ec21420
        fcmgt v0.2s, v1.2s, v2.2s|2ea2e420
        fcmgt v0.4s, v1.4s, v2.4s|6ea2e420
        fcmgt v0.2d, v1.2d, v2.2d|6ee2e420
        fcmgt v0.4h, v1.4h, v2.4h|2ec22420
        fcmgt v0.8h, v1.8h, v2.8h|6ec22420
        facgt v0.2s, v1.2s, v2.2s|2ea2ec20
        facgt v0.4s, v1.4s, v2.4s|6ea2ec20
        facgt v0.2d, v1.2d, v2.2d|6ee2ec20
        facgt v0.4h, v1.4h, v2.4h|2ec22c20
        facgt v0.8h, v1.8h, v2.8h|6ec22c20
        fminp v0.2s, v1.2s, v2.2s|2ea2f420
        fminp v0.4s, v1.4s, v2.4s|6ea2f420
        fminp v0.2d, v1.2d, v2.2d|6ee2f420
        fminp v0.4h, v1.4h, v2.4h|2ec23420
        fminp v0.8h, v1.8h, v2.8h|6ec23420
        saddl v0.8h, v1.8b, v2.8b|0e220020
        saddl2 v0.4s, v1.8h, v2.8h|4e620020
        saddl v0.2d, v1.2s, v2.2s|0ea20020
        uaddl v0.8h, v1.8b, v2.8b|2e220020
        uaddl2 v0.4s, v1.8h, v2.8h|6e620020
        uaddl v0.2d, v1.2s, v2.2s|2ea20020
        ssubl v0.8h, v1.8b, v2.8b|0e222020
        ssubl2 v0.4s, v1.8h, v2.8h|4e622020
        ssubl v0.2d, v1.2s, v2.2s|0ea22020
        usubl v0.8h, v1.8b, v2.8b|2e222020
        usubl2 v0.4s, v1.8h, v2.8h|6e622020
        usubl v0.2d, v1.2s, v2.2s|2ea22020
        sabal v0.8h, v1.8b, v2.8b|0e225020
        sabal2 v0.4s, v1.8h, v2.8h|4e625020
        sabal v0.2d, v1.2s, v2.2s|0ea25020
        uabal v0.8h, v1.8b, v2.8b|2e225020
        uabal2 v0.4s, v1.8h, v2.8h|6e625020
        uabal v0.2d, v1.2s, v2.2s|2ea25020
        sabdl v0.8h, v1.8b, v2.8b|0e227020
        sabdl2 v0.4s, v1.8h, v2.8h|4e627020
        sabdl v0.2d, v1.2s, v2.2s|0ea27020
        uabdl v0.8h, v1.8b, v2.8b|2e227020
        uabdl2 v0.4s, v1.8h, v2.8h|6e627020
        uabdl v0.2d, v1.2s, v2.2s|2ea27020
        smlal v0.8h, v1.8b, v2.8b|0e228020
        smlal2 v0.4s, v1.8h, v2.8h|4e628020
        smlal v0.2d, v1.2s, v2.2s|0ea28020
        umlal v0.8h, v1.8b, v2.8b|2e228020
        umlal2 v0.4s, v1.8h, v2.8h|6e628020
        umlal v0.2d, v1.2s, v2.2s|2ea28020
        smlsl v0.8h, v1.8b, v2.8b|0e22a020
        smlsl2 v0.4s, v1.8h, v2.8h|4e62a020
        smlsl v0.2d, v1.2s, v2.2s|0ea2a020
        umlsl v0.8h, v1.8b, v2.8b|2e22a020
        umlsl2 v0.4s, v1.8h, v2.8h|6e62a020
        umlsl v0.2d, v1.2s, v2.2s|2ea2a020
        smull v0.8h, v1.8b, v2.8b|0e22c020
        smull2 v0.4s, v1.8h, v2.8h|4e62c020
        smull v0.2d, v1.2s, v2.2s|0ea2c020
        umull v0.8h, v1.8b, v2.8b|2e22c020
        umull2 v0.4s, v1.8h, v2.8h|6e62c020
        umull v0.2d, v1.2s, v2.2s|2ea2c020
        saddw v0.8h, v1.8h, v2.8b|0e221020
        saddw2 v0.4s, v1.4s, v2.8h|4e621020
        saddw v0.2d, v1.2d, v2.2s|0ea21020
        uaddw v0.8h, v1.8h, v2.8b|2e221020
        uaddw2 v0.4s, v1.4s, v2.8h|6e621020
        uaddw v0.2d, v1.2d, v2.2s|2ea21020
        ssubw v0.8h, v1.8h, v2.8b|0e223020
        ssubw2 v0.4s, v1.4s, v2.8h|4e623020
        ssubw v0.2d, v1.2d, v2.2s|0ea23020
        usubw v0.8h, v1.8h, v2.8b|2e223020
        usubw2 v0.4s, v1.4s, v2.8h|6e623020
        usubw v0.2d, v1.2d, v2.2s|2ea23020
        addhn v0.8b, v1.8h, v2.8h|0e224020
        addhn2 v0.8h, v1.4s, v2.4s|4e624020
        addhn v0.2s, v1.2d, v2.2d|0ea24020
        subhn v0.8b, v1.8h, v2.8h|0e226020
        subhn2 v0.8h, v1.4s, v2.4s|4e626020
        subhn v0.2s, v1.2d, v2.2d|0ea26020
        raddhn v0.8b, v1.8h, v2.8h|2e224020
        raddhn2 v0.8h, v1.4s, v2.4s|6e624020
        raddhn v0.2s, v1.2d, v2.2d|2ea24020
        rsubhn v0.8b, v1.8h, v2.8h|2e226020
        rsubhn2 v0.8h, v1.4s, v2.4s|6e626020
        rsubhn v0.2s, v1.2d, v2.2d|2ea26020
        sqdmlal v0.4s, v1.4h, v2.4h|0e629020
        sqdmlal2 v0.2d, v1.4s, v2.4s|4ea29020
        sqdmlal s0, h1, h2|5e629020
        sqdmlal d0, s1, s2|5ea29020
        sqdmlsl v0.4s, v1.4h, v2.4h|0e62b020
        sqdmlsl2 v0.2d, v1.4s, v2.4s|4ea2b020
        sqdmlsl s0, h1, h2|5e62b020
        sqdmlsl d0, s1, s2|5ea2b020
        sqdmull v0.4s, v1.4h, v2.4h|0e62d020
        sqdmull2 v0.2d, v1.4s, v2.4s|4ea2d020
        sqdmull s0, h1, h2|5e62d020
        sqdmull d0, s1, s2|5ea2d020
        pmull v0.8h, v1.8b, v2.8b|0e22e020
        pmull2 v0.8h, v1.16b, v2.16b|4e22e020
        pmull v0.1q, v1.1d, v2.1d|0ee2e020
        pmull2 v0.1q, v1.2d, v2.2d|4ee2e020
        rev64 v0.8b, v1.8b|0e200820
        rev64 v0.16b, v1.16b|4e200820
        rev64 v0.4h, v1.4h|0e600820
        rev64 v0.8h, v1.8h|4e600820
        rev64 v0.2s, v1.2s|0ea00820
        rev64 v0.4s, v1.4s|4ea00820
        rev32 v0.8b, v1.8b|2e200820
        rev32 v0.16b, v1.16b|6e200820
        rev32 v0.4h, v1.4h|2e600820
        rev32 v0.8h, v1.8h|6e600820
        rev16 v0.8b, v1.8b|0e201820
        rev16 v0.16b, v1.16b|4e201820
        saddlp v0.4h, v1.8b|0e202820
        saddlp v0.8h, v1.16b|4e202820
        saddlp v0.2s, v1.4h|0e602820
        saddlp v0.4s, v1.8h|4e602820
        saddlp v0.1d, v1.2s|0ea02820
        saddlp v0.2d, v1.4s|4ea02820
        uaddlp v0.4h, v1.8b|2e202820
        uaddlp v0.8h, v1.16b|6e202820
        uaddlp v0.2s, v1.4h|2e602820
        uaddlp v0.4s, v1.8h|6e602820
        uaddlp v0.1d, v1.2s|2ea02820
        uaddlp v0.2d, v1.4s|6ea02820
        sadalp v0.4h, v1.8b|0e206820
        sadalp v0.8h, v1.16b|4e206820
        sadalp v0.2s, v1.4h|0e606820
        sadalp v0.4s, v1.8h|4e606820
        sadalp v0.1d, v1.2s|0ea06820
        sadalp v0.2d, v1.4s|4ea06820
        uadalp v0.4h, v1.8b|2e206820
        uadalp v0.8h, v1.16b|6e206820
        uadalp v0.2s, v1.4h|2e606820
        uadalp v0.4s, v1.8h|6e606820
        uadalp v0.1d, v1.2s|2ea06820
        uadalp v0.2d, v1.4s|6ea06820
        suqadd v0.8b, v1.8b|0e203820
        suqadd v0.16b, v1.16b|4e203820
        suqadd v0.4h, v1.4h|0e603820
        suqadd v0.8h, v1.8h|4e603820
        suqadd v0.2s, v1.2s|0ea03820
        suqadd v0.4s, v1.4s|4ea03820
        suqadd v0.2d, v1.2d|4ee03820
        usqadd v0.8b, v1.8b|2e203820
        usqadd v0.16b, v1.16b|6e203820
        usqadd v0.4h, v1.4h|2e603820
        usqadd v0.8h, v1.8h|6e603820
        usqadd v0.2s, v1.2s|2ea03820
        usqadd v0.4s, v1.4s|6ea03820
        usqadd v0.2d, v1.2d|6ee03820
        sqabs v0.8b, v1.8b|0e207820
        sqabs v0.16b, v1.16b|4e207820
        sqabs v0.4h, v1.4h|0e607820
        sqabs v0.8h, v1.8h|4e607820
        sqabs v0.2s, v1.2s|0ea07820
        sqabs v0.4s, v1.4s|4ea07820
        sqabs v0.2d, v1.2d|4ee07820
        sqneg v0.8b, v1.8b|2e207820
        sqneg v0.16b, v1.16b|6e207820
        sqneg v0.4h, v1.4h|2e607820
        sqneg v0.8h, v1.8h|6e607820
        sqneg v0.2s, v1.2s|2ea07820
        sqneg v0.4s, v1.4s|6ea07820
        sqneg v0.2d, v1.2d|6ee07820
        abs v0.8b, v1.8b|0e20b820
        abs v0.16b, v1.16b|4e20b820
        abs v0.4h, v1.4h|0e60b820
        abs v0.8h, v1.8h|4e60b820
        abs v0.2s, v1.2s|0ea0b820
        abs v0.4s, v1.4s|4ea0b820
        abs v0.2d, v1.2d|4ee0b820
        neg v0.8b, v1.8b|2e20b820
        neg v0.16b, v1.16b|6e20b820
        neg v0.4h, v1.4h|2e60b820
        neg v0.8h, v1.8h|6e60b820
        neg v0.2s, v1.2s|2ea0b820
        neg v0.4s, v1.4s|6ea0b820
        neg v0.2d, v1.2d|6ee0b820
        cmgt v0.8b, v1.8b, #0|0e208820
        cmgt v0.16b, v1.16b, #0|4e208820
        cmgt v0.4h, v1.4h, #0|0e608820
        cmgt v0.8h, v1.8h, #0|4e608820
        cmgt v0.2s, v1.2s, #0|0ea08820
        cmgt v0.4s, v1.4s, #0|4ea08820
        cmgt v0.2d, v1.2d, #0|4ee08820
        cmeq v0.8b, v1.8b, #0|0e209820
        cmeq v0.16b, v1.16b, #0|4e209820
        cmeq v0.4h, v1.4h, #0|0e609820
        cmeq v0.8h, v1.8h, #0|4e609820
        cmeq v0.2s, v1.2s, #0|0ea09820
        cmeq v0.4s, v1.4s, #0|4ea09820
        cmeq v0.2d, v1.2d, #0|4ee09820
        cmlt v0.8b, v1.8b, #0|0e20a820
        cmlt v0.16b, v1.16b, #0|4e20a820
        cmlt v0.4h, v1.4h, #0|0e60a820
        cmlt v0.8h, v1.8h, #0|4e60a820
        cmlt v0.2s, v1.2s, #0|0ea0a820
        cmlt v0.4s, v1.4s, #0|4ea0a820
        cmlt v0.2d, v1.2d, #0|4ee0a820
        cmge v0.8b, v1.8b, #0|2e208820
        cmge v0.16b, v1.16b, #0|6e208820
        cmge v0.4h, v1.4h, #0|2e608820
        cmge v0.8h, v1.8h, #0|6e608820
        cmge v0.2s, v1.2s, #0|2ea08820
        cmge v0.4s, v1.4s, #0|6ea08820
        cmge v0.2d, v1.2d, #0|6ee08820
        cmle v0.8b, v1.8b, #0|2e209820
        cmle v0.16b, v1.16b, #0|6e209820
        cmle v0.4h, v1.4h, #0|2e609820
        cmle v0.8h, v1.8h, #0|6e609820
        cmle v0.2s, v1.2s, #0|2ea09820
        cmle v0.4s, v1.4s, #0|6ea09820
        cmle v0.2d, v1.2d, #0|6ee09820
        cls v0.8b, v1.8b|0e204820
        cls v0.16b, v1.16b|4e204820
        cls v0.4h, v1.4h|0e604820
        cls v0.8h, v1.8h|4e604820
        cls v0.2s, v1.2s|0ea04820
        cls v0.4s, v1.4s|4ea04820
        clz v0.8b, v1.8b|2e204820
        clz v0.16b, v1.16b|6e204820
        clz v0.4h, v1.4h|2e604820
        clz v0.8h, v1.8h|6e604820
        clz v0.2s, v1.2s|2ea04820
        clz v0.4s, v1.4s|6ea04820
        cnt v0.8b, v1.8b|0e205820
        cnt v0.16b, v1.16b|4e205820
        not v0.8b, v1.8b|2e205820
        not v0.16b, v1.16b|6e205820
        rbit v0.8b, v1.8b|2e605820
        rbit v0.16b, v1.16b|6e605820
        mvn v0.16b, v1.16b|6e205820
        xtn v0.8b, v1.8h|0e212820
        xtn2 v0.16b, v1.8h|4e212820
        xtn v0.4h, v1.4s|0e612820
        xtn v0.2s, v1.2d|0ea12820
        xtn2 v0.4s, v1.2d|4ea12820
        sqxtn v0.8b, v1.8h|0e214820
        sqxtn2 v0.16b, v1.8h|4e214820
        sqxtn v0.4h, v1.4s|0e614820
        sqxtn v0.2s, v1.2d|0ea14820
        sqxtn2 v0.4s, v1.2d|4ea14820
        uqxtn v0.8b, v1.8h|2e214820
        uqxtn2 v0.16b, v1.8h|6e214820
        uqxtn v0.4h, v1.4s|2e614820
        uqxtn v0.2s, v1.2d|2ea14820
        uqxtn2 v0.4s, v1.2d|6ea14820
        sqxtun v0.8b, v1.8h|2e212820
        sqxtun2 v0.16b, v1.8h|6e212820
        sqxtun v0.4h, v1.4s|2e612820
        sqxtun v0.2s, v1.2d|2ea12820
        sqxtun2 v0.4s, v1.2d|6ea12820
        shll v0.8h, v1.8b, #8|2e213820
        shll2 v0.4s, v1.8h, #16|6e613820
        shll v0.2d, v1.2s, #32|2ea13820
        fcvtn v0.4h, v1.4s|0e216820
        fcvtn2 v0.8h, v1.4s|4e216820
        fcvtn v0.2s, v1.2d|0e616820
        fcvtn2 v0.4s, v1.2d|4e616820
        fcvtl v0.4s, v1.4h|0e217820
        fcvtl2 v0.4s, v1.8h|4e217820
        fcvtl v0.2d, v1.2s|0e617820
        fcvtl2 v0.2d, v1.4s|4e617820
        fcvtxn v0.2s, v1.2d|2e616820
        fcvtxn2 v0.4s, v1.2d|6e616820
        frintn v0.2s, v1.2s|0e218820
        frintn v0.4s, v1.4s|4e218820
        frintn v0.2d, v1.2d|4e618820
        frintn v0.4h, v1.4h|0e798820
        frintn v0.8h, v1.8h|4e798820
        frintm v0.2s, v1.2s|0e219820
        frintm v0.4s, v1.4s|4e219820
        frintm v0.2d, v1.2d|4e619820
        frintm v0.4h, v1.4h|0e799820
        frintm v0.8h, v1.8h|4e799820
        frintp v0.2s, v1.2s|0ea18820
        frintp v0.4s, v1.4s|4ea18820
        frintp v0.2d, v1.2d|4ee18820
        frintp v0.4h, v1.4h|0ef98820
        frintp v0.8h, v1.8h|4ef98820
        frintz v0.2s, v1.2s|0ea19820
        frintz v0.4s, v1.4s|4ea19820
        frintz v0.2d, v1.2d|4ee19820
        frintz v0.4h, v1.4h|0ef99820
        frintz v0.8h, v1.8h|4ef99820
        frinta v0.2s, v1.2s|2e218820
        frinta v0.4s, v1.4s|6e218820
        frinta v0.2d, v1.2d|6e618820
        frinta v0.4h, v1.4h|2e798820
        frinta v0.8h, v1.8h|6e798820
        frintx v0.2s, v1.2s|2e219820
        frintx v0.4s, v1.4s|6e219820
        frintx v0.2d, v1.2d|6e619820
        frintx v0.4h, v1.4h|2e799820
        frintx v0.8h, v1.8h|6e799820
        frinti v0.2s, v1.2s|2ea19820
        frinti v0.4s, v1.4s|6ea19820
        frinti v0.2d, v1.2d|6ee19820
        frinti v0.4h, v1.4h|2ef99820
        frinti v0.8h, v1.8h|6ef99820
        fcvtns v0.2s, v1.2s|0e21a820
        fcvtns v0.4s, v1.4s|4e21a820
        fcvtns v0.2d, v1.2d|4e61a820
        fcvtns v0.4h, v1.4h|0e79a820
        fcvtns v0.8h, v1.8h|4e79a820
        fcvtms v0.2s, v1.2s|0e21b820
        fcvtms v0.4s, v1.4s|4e21b820
        fcvtms v0.2d, v1.2d|4e61b820
        fcvtms v0.4h, v1.4h|0e79b820
        fcvtms v0.8h, v1.8h|4e79b820
        fcvtas v0.2s, v1.2s|0e21c820
        fcvtas v0.4s, v1.4s|4e21c820
        fcvtas v0.2d, v1.2d|4e61c820
        fcvtas v0.4h, v1.4h|0e79c820
        fcvtas v0.8h, v1.8h|4e79c820
        fcvtps v0.2s, v1.2s|0ea1a820
        fcvtps v0.4s, v1.4s|4ea1a820
        fcvtps v0.2d, v1.2d|4ee1a820
        fcvtps v0.4h, v1.4h|0ef9a820
        fcvtps v0.8h, v1.8h|4ef9a820
        fcvtzs v0.2s, v1.2s|0ea1b820
        fcvtzs v0.4s, v1.4s|4ea1b820
        fcvtzs v0.2d, v1.2d|4ee1b820
        fcvtzs v0.4h, v1.4h|0ef9b820
        fcvtzs v0.8h, v1.8h|4ef9b820
        fcvtnu v0.2s, v1.2s|2e21a820
        fcvtnu v0.4s, v1.4s|6e21a820
        fcvtnu v0.2d, v1.2d|6e61a820
        fcvtnu v0.4h, v1.4h|2e79a820
        fcvtnu v0.8h, v1.8h|6e79a820
        fcvtmu v0.2s, v1.2s|2e21b820
        fcvtmu v0.4s, v1.4s|6e21b820
        fcvtmu v0.2d, v1.2d|6e61b820
        fcvtmu v0.4h, v1.4h|2e79b820
        fcvtmu v0.8h, v1.8h|6e79b820
        fcvtau v0.2s, v1.2s|2e21c820
        fcvtau v0.4s, v1.4s|6e21c820
        fcvtau v0.2d, v1.2d|6e61c820
        fcvtau v0.4h, v1.4h|2e79c820
        fcvtau v0.8h, v1.8h|6e79c820
        fcvtpu v0.2s, v1.2s|2ea1a820
        fcvtpu v0.4s, v1.4s|6ea1a820
        fcvtpu v0.2d, v1.2d|6ee1a820
        fcvtpu v0.4h, v1.4h|2ef9a820
        fcvtpu v0.8h, v1.8h|6ef9a820
        fcvtzu v0.2s, v1.2s|2ea1b820
        fcvtzu v0.4s, v1.4s|6ea1b820
        fcvtzu v0.2d, v1.2d|6ee1b820
        fcvtzu v0.4h, v1.4h|2ef9b820
        fcvtzu v0.8h, v1.8h|6ef9b820
        scvtf v0.2s, v1.2s|0e21d820
        scvtf v0.4s, v1.4s|4e21d820
        scvtf v0.2d, v1.2d|4e61d820
        scvtf v0.4h, v1.4h|0e79d820
        scvtf v0.8h, v1.8h|4e79d820
        ucvtf v0.2s, v1.2s|2e21d820
        ucvtf v0.4s, v1.4s|6e21d820
        ucvtf v0.2d, v1.2d|6e61d820
        ucvtf v0.4h, v1.4h|2e79d820
        ucvtf v0.8h, v1.8h|6e79d820
        fabs v0.2s, v1.2s|0ea0f820
        fabs v0.4s, v1.4s|4ea0f820
        fabs v0.2d, v1.2d|4ee0f820
        fabs v0.4h, v1.4h|0ef8f820
        fabs v0.8h, v1.8h|4ef8f820
        fneg v0.2s, v1.2s|2ea0f820
        fneg v0.4s, v1.4s|6ea0f820
        fneg v0.2d, v1.2d|6ee0f820
        fneg v0.4h, v1.4h|2ef8f820
        fneg v0.8h, v1.8h|6ef8f820
        fsqrt v0.2s, v1.2s|2ea1f820
        fsqrt v0.4s, v1.4s|6ea1f820
        fsqrt v0.2d, v1.2d|6ee1f820
        fsqrt v0.4h, v1.4h|2ef9f820
        fsqrt v0.8h, v1.8h|6ef9f820
        frecpe v0.2s, v1.2s|0ea1d820
        frecpe v0.4s, v1.4s|4ea1d820
        frecpe v0.2d, v1.2d|4ee1d820
        frecpe v0.4h, v1.4h|0ef9d820
        frecpe v0.8h, v1.8h|4ef9d820
        frsqrte v0.2s, v1.2s|2ea1d820
        frsqrte v0.4s, v1.4s|6ea1d820
        frsqrte v0.2d, v1.2d|6ee1d820
        frsqrte v0.4h, v1.4h|2ef9d820
        frsqrte v0.8h, v1.8h|6ef9d820
        fcmgt v0.2s, v1.2s, #0.0|0ea0c820
        fcmgt v0.4s, v1.4s, #0.0|4ea0c820
        fcmgt v0.2d, v1.2d, #0.0|4ee0c820
        fcmgt v0.4h, v1.4h, #0.0|0ef8c820
        fcmgt v0.8h, v1.8h, #0.0|4ef8c820
        fcmeq v0.2s, v1.2s, #0.0|0ea0d820
        fcmeq v0.4s, v1.4s, #0.0|4ea0d820
        fcmeq v0.2d, v1.2d, #0.0|4ee0d820
        fcmeq v0.4h, v1.4h, #0.0|0ef8d820
        fcmeq v0.8h, v1.8h, #0.0|4ef8d820
        fcmlt v0.2s, v1.2s, #0.0|0ea0e820
        fcmlt v0.4s, v1.4s, #0.0|4ea0e820
        fcmlt v0.2d, v1.2d, #0.0|4ee0e820
        fcmlt v0.4h, v1.4h, #0.0|0ef8e820
        fcmlt v0.8h, v1.8h, #0.0|4ef8e820
        fcmge v0.2s, v1.2s, #0.0|2ea0c820
        fcmge v0.4s, v1.4s, #0.0|6ea0c820
        fcmge v0.2d, v1.2d, #0.0|6ee0c820
        fcmge v0.4h, v1.4h, #0.0|2ef8c820
        fcmge v0.8h, v1.8h, #0.0|6ef8c820
        fcmle v0.2s, v1.2s, #0.0|2ea0d820
        fcmle v0.4s, v1.4s, #0.0|6ea0d820
        fcmle v0.2d, v1.2d, #0.0|6ee0d820
        fcmle v0.4h, v1.4h, #0.0|2ef8d820
        fcmle v0.8h, v1.8h, #0.0|6ef8d820
        urecpe v0.2s, v1.2s|0ea1c820
        urecpe v0.4s, v1.4s|4ea1c820
        ursqrte v0.2s, v1.2s|2ea1c820
        ursqrte v0.4s, v1.4s|6ea1c820
        saddlv h0, v1.8b|0e303820
        saddlv h0, v1.16b|4e303820
        saddlv s0, v1.4h|0e703820
        saddlv s0, v1.8h|4e703820
        saddlv d0, v1.4s|4eb03820
        uaddlv h0, v1.8b|2e303820
        uaddlv h0, v1.16b|6e303820
        uaddlv s0, v1.4h|2e703820
        uaddlv s0, v1.8h|6e703820
        uaddlv d0, v1.4s|6eb03820
        smaxv b0, v1.8b|0e30a820
        smaxv b0, v1.16b|4e30a820
        smaxv h0, v1.4h|0e70a820
        smaxv h0, v1.8h|4e70a820
        smaxv s0, v1.4s|4eb0a820
        sminv b0, v1.8b|0e31a820
        sminv b0, v1.16b|4e31a820
        sminv h0, v1.4h|0e71a820
        sminv h0, v1.8h|4e71a820
        sminv s0, v1.4s|4eb1a820
        umaxv b0, v1.8b|2e30a820
        umaxv b0, v1.16b|6e30a820
        umaxv h0, v1.4h|2e70a820
        umaxv h0, v1.8h|6e70a820
        umaxv s0, v1.4s|6eb0a820
        uminv b0, v1.8b|2e31a820
        uminv b0, v1.16b|6e31a820
        uminv h0, v1.4h|2e71a820
        uminv h0, v1.8h|6e71a820
        uminv s0, v1.4s|6eb1a820
        addv b0, v1.8b|0e31b820
        addv b0, v1.16b|4e31b820
        addv h0, v1.4h|0e71b820
        addv h0, v1.8h|4e71b820
        addv s0, v1.4s|4eb1b820
        fmaxnmv s0, v1.4s|6e30c820
        fmaxnmv h0, v1.4h|0e30c820
        fmaxnmv h0, v1.8h|4e30c820
        fmaxv s0, v1.4s|6e30f820
        fmaxv h0, v1.4h|0e30f820
        fmaxv h0, v1.8h|4e30f820
        fminnmv s0, v1.4s|6eb0c820
        fminnmv h0, v1.4h|0eb0c820
        fminnmv h0, v1.8h|4eb0c820
        fminv s0, v1.4s|6eb0f820
        fminv h0, v1.4h|0eb0f820
        fminv h0, v1.8h|4eb0f820
        dup v0.8b, v1.b[7]|0e0f0420
        dup v0.16b, v1.b[15]|4e1f0420
        dup v0.4h, v1.h[3]|0e0e0420
        dup v0.8h, v1.h[7]|4e1e0420
        dup v0.2s, v1.s[1]|0e0c0420
        dup v0.4s, v1.s[3]|4e1c0420
        dup v0.2d, v1.d[1]|4e180420
        dup v0.8b, w1|0e010c20
        dup v0.16b, w1|4e010c20
        dup v0.4h, w1|0e020c20
        dup v0.8h, w1|4e020c20
        dup v0.2s, w1|0e040c20
        dup v0.4s, w1|4e040c20
        dup v0.2d, x1|4e080c20
        smov w0, v1.b[3]|0e072c20
        smov w0, v1.h[3]|0e0e2c20
        smov x0, v1.b[3]|4e072c20
        smov x0, v1.h[3]|4e0e2c20
        smov x0, v1.s[3]|4e1c2c20
        umov w0, v1.b[3]|0e073c20
        umov w0, v1.h[3]|0e0e3c20
        umov w0, v1.s[3]|0e1c3c20
        umov x0, v1.d[1]|4e183c20
        ins v0.b[1], w1|4e031c20
        ins v0.h[1], w1|4e061c20
        ins v0.s[1], w1|4e0c1c20
        ins v0.d[1], x1|4e181c20
        ins v0.b[1], v1.b[0]|6e030420
        ins v0.h[1], v1.h[0]|6e060420
        ins v0.s[1], v1.s[0]|6e0c0420
        ins v0.d[1], v1.d[0]|6e180420
        dup b0, v1.b[1]|5e030420
        dup h0, v1.h[1]|5e060420
        dup s0, v1.s[1]|5e0c0420
        dup d0, v1.d[1]|5e180420
        movi v0.8b, #0xab|0f05e560
        movi v0.16b, #0xab|4f05e560
        movi v0.4h, #0xab|0f058560
        movi v0.8h, #0xab, lsl #8|4f05a560
        movi v0.2s, #0xab|0f050560
        movi v0.4s, #0xab, lsl #24|4f056560
        movi v0.2s, #0xab, msl #8|0f05c560
        movi v0.4s, #0xab, msl #16|4f05d560
        movi d0, #0xff00ff00ff00ff00|2f05e540
        movi v0.2d, #0xff00ff00ff00ff00|6f05e540
        mvni v0.4h, #0xab|2f058560
        mvni v0.8h, #0xab, lsl #8|6f05a560
        mvni v0.2s, #0xab, lsl #16|2f054560
        mvni v0.4s, #0xab, msl #8|6f05c560
        orr v0.4h, #0xab|0f059560
        orr v0.4s, #0xab, lsl #8|4f053560
        bic v0.8h, #0xab|6f059560
        bic v0.2s, #0xab, lsl #24|2f057560
        fmov v0.2s, #1.5|0f03f700
        fmov v0.4s, #-2.0|4f04f400
        fmov v0.2d, #0.5|6f03f400
        fmov v0.4h, #1.5|0f03ff00
        fmov v0.8h, #-2.0|4f04fc00
        sshr v0.8b, v1.8b, #3|0f0d0420
        sshr v0.16b, v1.16b, #8|4f080420
        sshr v0.4h, v1.4h, #5|0f1b0420
        sshr v0.8h, v1.8h, #16|4f100420
        sshr v0.2s, v1.2s, #7|0f390420
        sshr v0.4s, v1.4s, #32|4f200420
        sshr v0.2d, v1.2d, #33|4f5f0420
        ssra v0.8b, v1.8b, #3|0f0d1420
        ssra v0.16b, v1.16b, #8|4f081420
        ssra v0.4h, v1.4h, #5|0f1b1420
        ssra v0.8h, v1.8h, #16|4f101420
        ssra v0.2s, v1.2s, #7|0f391420
        ssra v0.4s, v1.4s, #32|4f201420
        ssra v0.2d, v1.2d, #33|4f5f1420
        srshr v0.8b, v1.8b, #3|0f0d2420
        srshr v0.16b, v1.16b, #8|4f082420
        srshr v0.4h, v1.4h, #5|0f1b2420
        srshr v0.8h, v1.8h, #16|4f102420
        srshr v0.2s, v1.2s, #7|0f392420
        srshr v0.4s, v1.4s, #32|4f202420
        srshr v0.2d, v1.2d, #33|4f5f2420
        srsra v0.8b, v1.8b, #3|0f0d3420
        srsra v0.16b, v1.16b, #8|4f083420
        srsra v0.4h, v1.4h, #5|0f1b3420
        srsra v0.8h, v1.8h, #16|4f103420
        srsra v0.2s, v1.2s, #7|0f393420
        srsra v0.4s, v1.4s, #32|4f203420
        srsra v0.2d, v1.2d, #33|4f5f3420
        ushr v0.8b, v1.8b, #3|2f0d0420
        ushr v0.16b, v1.16b, #8|6f080420
        ushr v0.4h, v1.4h, #5|2f1b0420
        ushr v0.8h, v1.8h, #16|6f100420
        ushr v0.2s, v1.2s, #7|2f390420
        ushr v0.4s, v1.4s, #32|6f200420
        ushr v0.2d, v1.2d, #33|6f5f0420
        usra v0.8b, v1.8b, #3|2f0d1420
        usra v0.16b, v1.16b, #8|6f081420
        usra v0.4h, v1.4h, #5|2f1b1420
        usra v0.8h, v1.8h, #16|6f101420
        usra v0.2s, v1.2s, #7|2f391420
        usra v0.4s, v1.4s, #32|6f201420
        usra v0.2d, v1.2d, #33|6f5f1420
        urshr v0.8b, v1.8b, #3|2f0d2420
        urshr v0.16b, v1.16b, #8|6f082420
        urshr v0.4h, v1.4h, #5|2f1b2420
        urshr v0.8h, v1.8h, #16|6f102420
        urshr v0.2s, v1.2s, #7|2f392420
        urshr v0.4s, v1.4s, #32|6f202420
        urshr v0.2d, v1.2d, #33|6f5f2420
        ursra v0.8b, v1.8b, #3|2f0d3420
        ursra v0.16b, v1.16b, #8|6f083420
        ursra v0.4h, v1.4h, #5|2f1b3420
        ursra v0.8h, v1.8h, #16|6f103420
        ursra v0.2s, v1.2s, #7|2f393420
        ursra v0.4s, v1.4s, #32|6f203420
        ursra v0.2d, v1.2d, #33|6f5f3420
        sri v0.8b, v1.8b, #3|2f0d4420
        sri v0.16b, v1.16b, #8|6f084420
        sri v0.4h, v1.4h, #5|2f1b4420
        sri v0.8h, v1.8h, #16|6f104420
        sri v0.2s, v1.2s, #7|2f394420
        sri v0.4s, v1.4s, #32|6f204420
        sri v0.2d, v1.2d, #33|6f5f4420
        shl v0.8b, v1.8b, #3|0f0b5420
        shl v0.16b, v1.16b, #7|4f0f5420
        shl v0.4h, v1.4h, #0|0f105420
        shl v0.8h, v1.8h, #15|4f1f5420
        shl v0.2s, v1.2s, #7|0f275420
        shl v0.4s, v1.4s, #31|4f3f5420
        shl v0.2d, v1.2d, #33|4f615420
        sli v0.8b, v1.8b, #3|2f0b5420
        sli v0.16b, v1.16b, #7|6f0f5420
        sli v0.4h, v1.4h, #0|2f105420
        sli v0.8h, v1.8h, #15|6f1f5420
        sli v0.2s, v1.2s, #7|2f275420
        sli v0.4s, v1.4s, #31|6f3f5420
        sli v0.2d, v1.2d, #33|6f615420
        sqshl v0.8b, v1.8b, #3|0f0b7420
        sqshl v0.16b, v1.16b, #7|4f0f7420
        sqshl v0.4h, v1.4h, #0|0f107420
        sqshl v0.8h, v1.8h, #15|4f1f7420
        sqshl v0.2s, v1.2s, #7|0f277420
        sqshl v0.4s, v1.4s, #31|4f3f7420
        sqshl v0.2d, v1.2d, #33|4f617420
        uqshl v0.8b, v1.8b, #3|2f0b7420
        uqshl v0.16b, v1.16b, #7|6f0f7420
        uqshl v0.4h, v1.4h, #0|2f107420
        uqshl v0.8h, v1.8h, #15|6f1f7420
        uqshl v0.2s, v1.2s, #7|2f277420
        uqshl v0.4s, v1.4s, #31|6f3f7420
        uqshl v0.2d, v1.2d, #33|6f617420
        sqshlu v0.8b, v1.8b, #3|2f0b6420
        sqshlu v0.16b, v1.16b, #7|6f0f6420
        sqshlu v0.4h, v1.4h, #0|2f106420
        sqshlu v0.8h, v1.8h, #15|6f1f6420
        sqshlu v0.2s, v1.2s, #7|2f276420
        sqshlu v0.4s, v1.4s, #31|6f3f6420
        sqshlu v0.2d, v1.2d, #33|6f616420
        shrn v0.8b, v1.8h, #3|0f0d8420
        shrn2 v0.16b, v1.8h, #8|4f088420
        shrn v0.4h, v1.4s, #16|0f108420
        shrn v0.2s, v1.2d, #32|0f208420
        shrn2 v0.4s, v1.2d, #1|4f3f8420
        rshrn v0.8b, v1.8h, #3|0f0d8c20
        rshrn2 v0.16b, v1.8h, #8|4f088c20
        rshrn v0.4h, v1.4s, #16|0f108c20
        rshrn v0.2s, v1.2d, #32|0f208c20
        rshrn2 v0.4s, v1.2d, #1|4f3f8c20
        sqshrn v0.8b, v1.8h, #3|0f0d9420
        sqshrn2 v0.16b, v1.8h, #8|4f089420
        sqshrn v0.4h, v1.4s, #16|0f109420
        sqshrn v0.2s, v1.2d, #32|0f209420
        sqshrn2 v0.4s, v1.2d, #1|4f3f9420
        sqrshrn v0.8b, v1.8h, #3|0f0d9c20
        sqrshrn2 v0.16b, v1.8h, #8|4f089c20
        sqrshrn v0.4h, v1.4s, #16|0f109c20
        sqrshrn v0.2s, v1.2d, #32|0f209c20
        sqrshrn2 v0.4s, v1.2d, #1|4f3f9c20
        uqshrn v0.8b, v1.8h, #3|2f0d9420
        uqshrn2 v0.16b, v1.8h, #8|6f089420
        uqshrn v0.4h, v1.4s, #16|2f109420
        uqshrn v0.2s, v1.2d, #32|2f209420
        uqshrn2 v0.4s, v1.2d, #1|6f3f9420
        uqrshrn v0.8b, v1.8h, #3|2f0d9c20
        uqrshrn2 v0.16b, v1.8h, #8|6f089c20
        uqrshrn v0.4h, v1.4s, #16|2f109c20
        uqrshrn v0.2s, v1.2d, #32|2f209c20
        uqrshrn2 v0.4s, v1.2d, #1|6f3f9c20
        sqshrun v0.8b, v1.8h, #3|2f0d8420
        sqshrun2 v0.16b, v1.8h, #8|6f088420
        sqshrun v0.4h, v1.4s, #16|2f108420
        sqshrun v0.2s, v1.2d, #32|2f208420
        sqshrun2 v0.4s, v1.2d, #1|6f3f8420
        sqrshrun v0.8b, v1.8h, #3|2f0d8c20
        sqrshrun2 v0.16b, v1.8h, #8|6f088c20
        sqrshrun v0.4h, v1.4s, #16|2f108c20
        sqrshrun v0.2s, v1.2d, #32|2f208c20
        sqrshrun2 v0.4s, v1.2d, #1|6f3f8c20
        sshll v0.8h, v1.8b, #3|0f0ba420
        sshll2 v0.4s, v1.8h, #0|4f10a420
        sshll v0.2d, v1.2s, #31|0f3fa420
        sxtl v0.8h, v1.8b|0f08a420
        ushll v0.8h, v1.8b, #3|2f0ba420
        ushll2 v0.4s, v1.8h, #0|6f10a420
        ushll v0.2d, v1.2s, #31|2f3fa420
        uxtl v0.8h, v1.8b|2f08a420
        scvtf v0.2s, v1.2s, #3|0f3de420
        scvtf v0.4s, v1.4s, #32|4f20e420
        scvtf v0.2d, v1.2d, #64|4f40e420
        scvtf v0.4h, v1.4h, #3|0f1de420
        scvtf v0.8h, v1.8h, #16|4f10e420
        scvtf s0, s1, #3|5f3de420
        scvtf d0, d1, #64|5f40e420
        scvtf h0, h1, #5|5f1be420
        ucvtf v0.2s, v1.2s, #3|2f3de420
        ucvtf v0.4s, v1.4s, #32|6f20e420
        ucvtf v0.2d, v1.2d, #64|6f40e420
        ucvtf v0.4h, v1.4h, #3|2f1de420
        ucvtf v0.8h, v1.8h, #16|6f10e420
        ucvtf s0, s1, #3|7f3de420
        ucvtf d0, d1, #64|7f40e420
        ucvtf h0, h1, #5|7f1be420
        fcvtzs v0.2s, v1.2s, #3|0f3dfc20
        fcvtzs v0.4s, v1.4s, #32|4f20fc20
        fcvtzs v0.2d, v1.2d, #64|4f40fc20
        fcvtzs v0.4h, v1.4h, #3|0f1dfc20
        fcvtzs v0.8h, v1.8h, #16|4f10fc20
        fcvtzs s0, s1, #3|5f3dfc20
        fcvtzs d0, d1, #64|5f40fc20
        fcvtzs h0, h1, #5|5f1bfc20
        fcvtzu v0.2s, v1.2s, #3|2f3dfc20
        fcvtzu v0.4s, v1.4s, #32|6f20fc20
        fcvtzu v0.2d, v1.2d, #64|6f40fc20
        fcvtzu v0.4h, v1.4h, #3|2f1dfc20
        fcvtzu v0.8h, v1.8h, #16|6f10fc20
        fcvtzu s0, s1, #3|7f3dfc20
        fcvtzu d0, d1, #64|7f40fc20
        fcvtzu h0, h1, #5|7f1bfc20
        mul v0.4h, v1.4h, v2.h[7]|0f728820
        mul v0.8h, v1.8h, v15.h[3]|4f7f8020
        mul v0.2s, v1.2s, v2.s[3]|0fa28820
        mul v0.4s, v1.4s, v17.s[1]|4fb18020
        mla v0.4h, v1.4h, v2.h[7]|2f720820
        mla v0.8h, v1.8h, v15.h[3]|6f7f0020
        mla v0.2s, v1.2s, v2.s[3]|2fa20820
        mla v0.4s, v1.4s, v17.s[1]|6fb10020
        mls v0.4h, v1.4h, v2.h[7]|2f724820
        mls v0.8h, v1.8h, v15.h[3]|6f7f4020
        mls v0.2s, v1.2s, v2.s[3]|2fa24820
        mls v0.4s, v1.4s, v17.s[1]|6fb14020
        sqdmulh v0.4h, v1.4h, v2.h[7]|0f72c820
        sqdmulh v0.8h, v1.8h, v15.h[3]|4f7fc020
        sqdmulh v0.2s, v1.2s, v2.s[3]|0fa2c820
        sqdmulh v0.4s, v1.4s, v17.s[1]|4fb1c020
        sqrdmulh v0.4h, v1.4h, v2.h[7]|0f72d820
        sqrdmulh v0.8h, v1.8h, v15.h[3]|4f7fd020
        sqrdmulh v0.2s, v1.2s, v2.s[3]|0fa2d820
        sqrdmulh v0.4s, v1.4s, v17.s[1]|4fb1d020
        sqrdmlah v0.4h, v1.4h, v2.h[7]|2f72d820
        sqrdmlah v0.8h, v1.8h, v15.h[3]|6f7fd020
        sqrdmlah v0.2s, v1.2s, v2.s[3]|2fa2d820
        sqrdmlah v0.4s, v1.4s, v17.s[1]|6fb1d020
        sqrdmlsh v0.4h, v1.4h, v2.h[7]|2f72f820
        sqrdmlsh v0.8h, v1.8h, v15.h[3]|6f7ff020
        sqrdmlsh v0.2s, v1.2s, v2.s[3]|2fa2f820
        sqrdmlsh v0.4s, v1.4s, v17.s[1]|6fb1f020
        smlal v0.4s, v1.4h, v2.h[7]|0f722820
        smlal2 v0.4s, v1.8h, v15.h[3]|4f7f2020
        smlal v0.2d, v1.2s, v2.s[3]|0fa22820
        smlal2 v0.2d, v1.4s, v17.s[1]|4fb12020
        umlal v0.4s, v1.4h, v2.h[7]|2f722820
        umlal2 v0.4s, v1.8h, v15.h[3]|6f7f2020
        umlal v0.2d, v1.2s, v2.s[3]|2fa22820
        umlal2 v0.2d, v1.4s, v17.s[1]|6fb12020
        smlsl v0.4s, v1.4h, v2.h[7]|0f726820
        smlsl2 v0.4s, v1.8h, v15.h[3]|4f7f6020
        smlsl v0.2d, v1.2s, v2.s[3]|0fa26820
        smlsl2 v0.2d, v1.4s, v17.s[1]|4fb16020
        umlsl v0.4s, v1.4h, v2.h[7]|2f726820
        umlsl2 v0.4s, v1.8h, v15.h[3]|6f7f6020
        umlsl v0.2d, v1.2s, v2.s[3]|2fa26820
        umlsl2 v0.2d, v1.4s, v17.s[1]|6fb16020
        smull v0.4s, v1.4h, v2.h[7]|0f72a820
        smull2 v0.4s, v1.8h, v15.h[3]|4f7fa020
        smull v0.2d, v1.2s, v2.s[3]|0fa2a820
        smull2 v0.2d, v1.4s, v17.s[1]|4fb1a020
        umull v0.4s, v1.4h, v2.h[7]|2f72a820
        umull2 v0.4s, v1.8h, v15.h[3]|6f7fa020
        umull v0.2d, v1.2s, v2.s[3]|2fa2a820
        umull2 v0.2d, v1.4s, v17.s[1]|6fb1a020
        sqdmlal v0.4s, v1.4h, v2.h[7]|0f723820
        sqdmlal2 v0.4s, v1.8h, v15.h[3]|4f7f3020
        sqdmlal v0.2d, v1.2s, v2.s[3]|0fa23820
        sqdmlal2 v0.2d, v1.4s, v17.s[1]|4fb13020
        sqdmlsl v0.4s, v1.4h, v2.h[7]|0f727820
        sqdmlsl2 v0.4s, v1.8h, v15.h[3]|4f7f7020
        sqdmlsl v0.2d, v1.2s, v2.s[3]|0fa27820
        sqdmlsl2 v0.2d, v1.4s, v17.s[1]|4fb17020
        sqdmull v0.4s, v1.4h, v2.h[7]|0f72b820
        sqdmull2 v0.4s, v1.8h, v15.h[3]|4f7fb020
        sqdmull v0.2d, v1.2s, v2.s[3]|0fa2b820
        sqdmull2 v0.2d, v1.4s, v17.s[1]|4fb1b020
        fmla v0.2s, v1.2s, v2.s[3]|0fa21820
        fmla v0.4s, v1.4s, v17.s[1]|4fb11020
        fmla v0.2d, v1.2d, v2.d[1]|4fc21820
        fmla v0.4h, v1.4h, v2.h[7]|0f321820
        fmla v0.8h, v1.8h, v15.h[3]|4f3f1020
        fmla s0, s1, v2.s[3]|5fa21820
        fmla d0, d1, v2.d[1]|5fc21820
        fmla h0, h1, v2.h[5]|5f121820
        fmls v0.2s, v1.2s, v2.s[3]|0fa25820
        fmls v0.4s, v1.4s, v17.s[1]|4fb15020
        fmls v0.2d, v1.2d, v2.d[1]|4fc25820
        fmls v0.4h, v1.4h, v2.h[7]|0f325820
        fmls v0.8h, v1.8h, v15.h[3]|4f3f5020
        fmls s0, s1, v2.s[3]|5fa25820
        fmls d0, d1, v2.d[1]|5fc25820
        fmls h0, h1, v2.h[5]|5f125820
        fmul v0.2s, v1.2s, v2.s[3]|0fa29820
        fmul v0.4s, v1.4s, v17.s[1]|4fb19020
        fmul v0.2d, v1.2d, v2.d[1]|4fc29820
        fmul v0.4h, v1.4h, v2.h[7]|0f329820
        fmul v0.8h, v1.8h, v15.h[3]|4f3f9020
        fmul s0, s1, v2.s[3]|5fa29820
        fmul d0, d1, v2.d[1]|5fc29820
        fmul h0, h1, v2.h[5]|5f129820
        fmulx v0.2s, v1.2s, v2.s[3]|2fa29820
        fmulx v0.4s, v1.4s, v17.s[1]|6fb19020
        fmulx v0.2d, v1.2d, v2.d[1]|6fc29820
        fmulx v0.4h, v1.4h, v2.h[7]|2f329820
        fmulx v0.8h, v1.8h, v15.h[3]|6f3f9020
        fmulx s0, s1, v2.s[3]|7fa29820
        fmulx d0, d1, v2.d[1]|7fc29820
        fmulx h0, h1, v2.h[5]|7f129820
        sqdmulh h0, h1, v2.h[7]|5f72c820
        sqdmulh s0, s1, v2.s[3]|5fa2c820
        sqrdmulh h0, h1, v2.h[7]|5f72d820
        sqrdmulh s0, s1, v2.s[3]|5fa2d820
        sqrdmlah h0, h1, v2.h[7]|7f72d820
        sqrdmlah s0, s1, v2.s[3]|7fa2d820
        sqrdmlsh h0, h1, v2.h[7]|7f72f820
        sqrdmlsh s0, s1, v2.s[3]|7fa2f820
        sqdmlal s0, h1, v2.h[7]|5f723820
        sqdmlal d0, s1, v2.s[3]|5fa23820
        sqdmlsl s0, h1, v2.h[7]|5f727820
        sqdmlsl d0, s1, v2.s[3]|5fa27820
        sqdmull s0, h1, v2.h[7]|5f72b820
        sqdmull d0, s1, v2.s[3]|5fa2b820
        sdot v0.4s, v1.16b, v2.16b|4e829420
        udot v0.2s, v1.8b, v2.8b|2e829420
        sdot v0.4s, v1.16b, v2.4b[3]|4fa2e820
        udot v0.2s, v1.8b, v2.4b[1]|2fa2e020
        uzp1 v0.8b, v1.8b, v2.8b|0e021820
        uzp1 v0.16b, v1.16b, v2.16b|4e021820
        uzp1 v0.4h, v1.4h, v2.4h|0e421820
        uzp1 v0.8h, v1.8h, v2.8h|4e421820
        uzp1 v0.2s, v1.2s, v2.2s|0e821820
        uzp1 v0.4s, v1.4s, v2.4s|4e821820
        uzp1 v0.2d, v1.2d, v2.2d|4ec21820
        uzp2 v0.8b, v1.8b, v2.8b|0e025820
        uzp2 v0.16b, v1.16b, v2.16b|4e025820
        uzp2 v0.4h, v1.4h, v2.4h|0e425820
        uzp2 v0.8h, v1.8h, v2.8h|4e425820
        uzp2 v0.2s, v1.2s, v2.2s|0e825820
        uzp2 v0.4s, v1.4s, v2.4s|4e825820
        uzp2 v0.2d, v1.2d, v2.2d|4ec25820
        trn1 v0.8b, v1.8b, v2.8b|0e022820
        trn1 v0.16b, v1.16b, v2.16b|4e022820
        trn1 v0.4h, v1.4h, v2.4h|0e422820
        trn1 v0.8h, v1.8h, v2.8h|4e422820
        trn1 v0.2s, v1.2s, v2.2s|0e822820
        trn1 v0.4s, v1.4s, v2.4s|4e822820
        trn1 v0.2d, v1.2d, v2.2d|4ec22820
        trn2 v0.8b, v1.8b, v2.8b|0e026820
        trn2 v0.16b, v1.16b, v2.16b|4e026820
        trn2 v0.4h, v1.4h, v2.4h|0e426820
        trn2 v0.8h, v1.8h, v2.8h|4e426820
        trn2 v0.2s, v1.2s, v2.2s|0e826820
        trn2 v0.4s, v1.4s, v2.4s|4e826820
        trn2 v0.2d, v1.2d, v2.2d|4ec26820
        zip1 v0.8b, v1.8b, v2.8b|0e023820
        zip1 v0.16b, v1.16b, v2.16b|4e023820
        zip1 v0.4h, v1.4h, v2.4h|0e423820
        zip1 v0.8h, v1.8h, v2.8h|4e423820
        zip1 v0.2s, v1.2s, v2.2s|0e823820
        zip1 v0.4s, v1.4s, v2.4s|4e823820
        zip1 v0.2d, v1.2d, v2.2d|4ec23820
        zip2 v0.8b, v1.8b, v2.8b|0e027820
        zip2 v0.16b, v1.16b, v2.16b|4e027820
        zip2 v0.4h, v1.4h, v2.4h|0e427820
        zip2 v0.8h, v1.8h, v2.8h|4e427820
        zip2 v0.2s, v1.2s, v2.2s|0e827820
        zip2 v0.4s, v1.4s, v2.4s|4e827820
        zip2 v0.2d, v1.2d, v2.2d|4ec27820
        ext v0.8b, v1.8b, v2.8b, #3|2e021820
        ext v0.16b, v1.16b, v2.16b, #9|6e024820
        tbl v0.8b, {v1.16b}, v7.8b|0e070020
        tbx v0.16b, {v1.16b}, v7.16b|4e071020
        tbl v0.8b, {v1.16b, v2.16b}, v7.8b|0e072020
        tbx v0.16b, {v1.16b, v2.16b}, v7.16b|4e073020
        tbl v0.8b, {v1.16b, v2.16b, v3.16b}, v7.8b|0e074020
        tbx v0.16b, {v1.16b, v2.16b, v3.16b}, v7.16b|4e075020
        tbl v0.8b, {v1.16b, v2.16b, v3.16b, v4.16b}, v7.8b|0e076020
        tbx v0.16b, {v1.16b, v2.16b, v3.16b, v4.16b}, v7.16b|4e077020
        addp d0, v1.2d|5ef1b820
        faddp s0, v1.2s|7e30d820
        faddp d0, v1.2d|7e70d820
        faddp h0, v1.2h|5e30d820
        fmaxp s0, v1.2s|7e30f820
        fmaxp d0, v1.2d|7e70f820
        fmaxp h0, v1.2h|5e30f820
        fminp s0, v1.2s|7eb0f820
        fminp d0, v1.2d|7ef0f820
        fminp h0, v1.2h|5eb0f820
        fmaxnmp s0, v1.2s|7e30c820
        fmaxnmp d0, v1.2d|7e70c820
        fmaxnmp h0, v1.2h|5e30c820
        fminnmp s0, v1.2s|7eb0c820
        fminnmp d0, v1.2d|7ef0c820
        fminnmp h0, v1.2h|5eb0c820
        sqadd b0, b1, b2|5e220c20
        sqadd h0, h1, h2|5e620c20
        sqadd s0, s1, s2|5ea20c20
        sqadd d0, d1, d2|5ee20c20
        uqadd b0, b1, b2|7e220c20
        uqadd h0, h1, h2|7e620c20
        uqadd s0, s1, s2|7ea20c20
        uqadd d0, d1, d2|7ee20c20
        sqsub b0, b1, b2|5e222c20
        sqsub h0, h1, h2|5e622c20
        sqsub s0, s1, s2|5ea22c20
        sqsub d0, d1, d2|5ee22c20
        uqsub b0, b1, b2|7e222c20
        uqsub h0, h1, h2|7e622c20
        uqsub s0, s1, s2|7ea22c20
        uqsub d0, d1, d2|7ee22c20
        sqshl b0, b1, b2|5e224c20
        sqshl h0, h1, h2|5e624c20
        sqshl s0, s1, s2|5ea24c20
        sqshl d0, d1, d2|5ee24c20
        uqshl b0, b1, b2|7e224c20
        uqshl h0, h1, h2|7e624c20
        uqshl s0, s1, s2|7ea24c20
        uqshl d0, d1, d2|7ee24c20
        sqrshl b0, b1, b2|5e225c20
        sqrshl h0, h1, h2|5e625c20
        sqrshl s0, s1, s2|5ea25c20
        sqrshl d0, d1, d2|5ee25c20
        uqrshl b0, b1, b2|7e225c20
        uqrshl h0, h1, h2|7e625c20
        uqrshl s0, s1, s2|7ea25c20
        uqrshl d0, d1, d2|7ee25c20
        cmgt d0, d1, d2|5ee23420
        cmhi d0, d1, d2|7ee23420
        cmge d0, d1, d2|5ee23c20
        cmhs d0, d1, d2|7ee23c20
        sshl d0, d1, d2|5ee24420
        ushl d0, d1, d2|7ee24420
        srshl d0, d1, d2|5ee25420
        urshl d0, d1, d2|7ee25420
        add d0, d1, d2|5ee28420
        sub d0, d1, d2|7ee28420
        cmtst d0, d1, d2|5ee28c20
        cmeq d0, d1, d2|7ee28c20
        sqdmulh h0, h1, h2|5e62b420
        sqdmulh s0, s1, s2|5ea2b420
        sqrdmulh h0, h1, h2|7e62b420
        sqrdmulh s0, s1, s2|7ea2b420
        sqrdmlah h0, h1, h2|7e428420
        sqrdmlah s0, s1, s2|7e828420
        sqrdmlsh h0, h1, h2|7e428c20
        sqrdmlsh s0, s1, s2|7e828c20
        fmulx s0, s1, s2|5e22dc20
        fmulx d0, d1, d2|5e62dc20
        fmulx h0, h1, h2|5e421c20
        fcmeq s0, s1, s2|5e22e420
        fcmeq d0, d1, d2|5e62e420
        fcmeq h0, h1, h2|5e422420
        frecps s0, s1, s2|5e22fc20
        frecps d0, d1, d2|5e62fc20
        frecps h0, h1, h2|5e423c20
        frsqrts s0, s1, s2|5ea2fc20
        frsqrts d0, d1, d2|5ee2fc20
        frsqrts h0, h1, h2|5ec23c20
        fcmge s0, s1, s2|7e22e420
        fcmge d0, d1, d2|7e62e420
        fcmge h0, h1, h2|7e422420
        facge s0, s1, s2|7e22ec20
        facge d0, d1, d2|7e62ec20
        facge h0, h1, h2|7e422c20
        fabd s0, s1, s2|7ea2d420
        fabd d0, d1, d2|7ee2d420
        fabd h0, h1, h2|7ec21420
        fcmgt s0, s1, s2|7ea2e420
        fcmgt d0, d1, d2|7ee2e420
        fcmgt h0, h1, h2|7ec22420
        facgt s0, s1, s2|7ea2ec20
        facgt d0, d1, d2|7ee2ec20
        facgt h0, h1, h2|7ec22c20
        suqadd b0, b1|5e203820
        suqadd h0, h1|5e603820
        suqadd s0, s1|5ea03820
        suqadd d0, d1|5ee03820
        usqadd b0, b1|7e203820
        usqadd h0, h1|7e603820
        usqadd s0, s1|7ea03820
        usqadd d0, d1|7ee03820
        sqabs b0, b1|5e207820
        sqabs h0, h1|5e607820
        sqabs s0, s1|5ea07820
        sqabs d0, d1|5ee07820
        sqneg b0, b1|7e207820
        sqneg h0, h1|7e607820
        sqneg s0, s1|7ea07820
        sqneg d0, d1|7ee07820
        abs d0, d1|5ee0b820
        neg d0, d1|7ee0b820
        cmgt d0, d1, #0|5ee08820
        cmeq d0, d1, #0|5ee09820
        cmlt d0, d1, #0|5ee0a820
        cmge d0, d1, #0|7ee08820
        cmle d0, d1, #0|7ee09820
        sqxtn b0, h1|5e214820
        sqxtn h0, s1|5e614820
        sqxtn s0, d1|5ea14820
        uqxtn b0, h1|7e214820
        uqxtn h0, s1|7e614820
        uqxtn s0, d1|7ea14820
        sqxtun b0, h1|7e212820
        sqxtun h0, s1|7e612820
        sqxtun s0, d1|7ea12820
        fcvtxn s0, d1|7e616820
        fcvtns s0, s1|5e21a820
        fcvtns d0, d1|5e61a820
        fcvtns h0, h1|5e79a820
        fcvtms s0, s1|5e21b820
        fcvtms d0, d1|5e61b820
        fcvtms h0, h1|5e79b820
        fcvtas s0, s1|5e21c820
        fcvtas d0, d1|5e61c820
        fcvtas h0, h1|5e79c820
        fcvtps s0, s1|5ea1a820
        fcvtps d0, d1|5ee1a820
        fcvtps h0, h1|5ef9a820
        fcvtzs s0, s1|5ea1b820
        fcvtzs d0, d1|5ee1b820
        fcvtzs h0, h1|5ef9b820
        fcvtnu s0, s1|7e21a820
        fcvtnu d0, d1|7e61a820
        fcvtnu h0, h1|7e79a820
        fcvtmu s0, s1|7e21b820
        fcvtmu d0, d1|7e61b820
        fcvtmu h0, h1|7e79b820
        fcvtau s0, s1|7e21c820
        fcvtau d0, d1|7e61c820
        fcvtau h0, h1|7e79c820
        fcvtpu s0, s1|7ea1a820
        fcvtpu d0, d1|7ee1a820
        fcvtpu h0, h1|7ef9a820
        fcvtzu s0, s1|7ea1b820
        fcvtzu d0, d1|7ee1b820
        fcvtzu h0, h1|7ef9b820
        scvtf s0, s1|5e21d820
        scvtf d0, d1|5e61d820
        scvtf h0, h1|5e79d820
        ucvtf s0, s1|7e21d820
        ucvtf d0, d1|7e61d820
        ucvtf h0, h1|7e79d820
        frecpe s0, s1|5ea1d820
        frecpe d0, d1|5ee1d820
        frecpe h0, h1|5ef9d820
        frsqrte s0, s1|7ea1d820
        frsqrte d0, d1|7ee1d820
        frsqrte h0, h1|7ef9d820
        frecpx s0, s1|5ea1f820
        frecpx d0, d1|5ee1f820
        frecpx h0, h1|5ef9f820
        fcmgt s0, s1, #0.0|5ea0c820
        fcmgt d0, d1, #0.0|5ee0c820
        fcmgt h0, h1, #0.0|5ef8c820
        fcmeq s0, s1, #0.0|5ea0d820
        fcmeq d0, d1, #0.0|5ee0d820
        fcmeq h0, h1, #0.0|5ef8d820
        fcmlt s0, s1, #0.0|5ea0e820
        fcmlt d0, d1, #0.0|5ee0e820
        fcmlt h0, h1, #0.0|5ef8e820
        fcmge s0, s1, #0.0|7ea0c820
        fcmge d0, d1, #0.0|7ee0c820
        fcmge h0, h1, #0.0|7ef8c820
        fcmle s0, s1, #0.0|7ea0d820
        fcmle d0, d1, #0.0|7ee0d820
        fcmle h0, h1, #0.0|7ef8d820
        sshr d0, d1, #17|5f6f0420
        ssra d0, d1, #17|5f6f1420
        srshr d0, d1, #17|5f6f2420
        srsra d0, d1, #17|5f6f3420
        ushr d0, d1, #17|7f6f0420
        usra d0, d1, #17|7f6f1420
        urshr d0, d1, #17|7f6f2420
        ursra d0, d1, #17|7f6f3420
        sri d0, d1, #17|7f6f4420
        shl d0, d1, #17|5f515420
        sli d0, d1, #17|7f515420
        sqshl b0, b1, #3|5f0b7420
        sqshl h0, h1, #9|5f197420
        sqshl s0, s1, #20|5f347420
        sqshl d0, d1, #40|5f687420
        uqshl b0, b1, #3|7f0b7420
        uqshl h0, h1, #9|7f197420
        uqshl s0, s1, #20|7f347420
        uqshl d0, d1, #40|7f687420
        sqshlu b0, b1, #3|7f0b6420
        sqshlu h0, h1, #9|7f196420
        sqshlu s0, s1, #20|7f346420
        sqshlu d0, d1, #40|7f686420
        sqshrn b0, h1, #3|5f0d9420
        sqshrn h0, s1, #9|5f179420
        sqshrn s0, d1, #20|5f2c9420
        sqrshrn b0, h1, #3|5f0d9c20
        sqrshrn h0, s1, #9|5f179c20
        sqrshrn s0, d1, #20|5f2c9c20
        uqshrn b0, h1, #3|7f0d9420
        uqshrn h0, s1, #9|7f179420
        uqshrn s0, d1, #20|7f2c9420
        uqrshrn b0, h1, #3|7f0d9c20
        uqrshrn h0, s1, #9|7f179c20
        uqrshrn s0, d1, #20|7f2c9c20
        sqshrun b0, h1, #3|7f0d8420
        sqshrun h0, s1, #9|7f178420
        sqshrun s0, d1, #20|7f2c8420
        sqrshrun b0, h1, #3|7f0d8c20
        sqrshrun h0, s1, #9|7f178c20
        sqrshrun s0, d1, #20|7f2c8c20
        fmov s0, s1|1e204020
        fabs s0, s1|1e20c020
        fneg s0, s1|1e214020
        fsqrt s0, s1|1e21c020
        frintn s0, s1|1e244020
        frintp s0, s1|1e24c020
        frintm s0, s1|1e254020
        frintz s0, s1|1e25c020
        frinta s0, s1|1e264020
        frintx s0, s1|1e274020
        frinti s0, s1|1e27c020
        fadd s0, s1, s2|1e222820
        fsub s0, s1, s2|1e223820
        fmul s0, s1, s2|1e220820
        fdiv s0, s1, s2|1e221820
        fmax s0, s1, s2|1e224820
        fmin s0, s1, s2|1e225820
        fmaxnm s0, s1, s2|1e226820
        fminnm s0, s1, s2|1e227820
        fnmul s0, s1, s2|1e228820
        fmadd s0, s1, s2, s3|1f020c20
        fmsub s0, s1, s2, s3|1f028c20
        fnmadd s0, s1, s2, s3|1f220c20
        fnmsub s0, s1, s2, s3|1f228c20
        fcmp s1, s2|1e222020
        fcmp s1, #0.0|1e202028
        fcmpe s1, s2|1e222030
        fcmpe s1, #0.0|1e202038
        fccmp s1, s2, #5, ne|1e221425
        fccmpe s1, s2, #5, ne|1e221435
        fcsel s0, s1, s2, lt|1e22bc20
        fmov s0, #1.25|1e2e9000
        fcvtns w0, s1|1e200020
        fcvtnu w0, s1|1e210020
        fcvtps w0, s1|1e280020
        fcvtpu w0, s1|1e290020
        fcvtms w0, s1|1e300020
        fcvtmu w0, s1|1e310020
        fcvtas w0, s1|1e240020
        fcvtau w0, s1|1e250020
        fcvtzs w0, s1|1e380020
        fcvtzu w0, s1|1e390020
        scvtf s0, w1|1e220020
        scvtf s0, w1, #7|1e02e420
        ucvtf s0, w1|1e230020
        ucvtf s0, w1, #7|1e03e420
        fcvtzs w0, s1, #7|1e18e420
        fcvtzu w0, s1, #7|1e19e420
        fcvtns x0, s1|9e200020
        fcvtnu x0, s1|9e210020
        fcvtps x0, s1|9e280020
        fcvtpu x0, s1|9e290020
        fcvtms x0, s1|9e300020
        fcvtmu x0, s1|9e310020
        fcvtas x0, s1|9e240020
        fcvtau x0, s1|9e250020
        fcvtzs x0, s1|9e380020
        fcvtzu x0, s1|9e390020
        scvtf s0, x1|9e220020
        scvtf s0, x1, #7|9e02e420
        ucvtf s0, x1|9e230020
        ucvtf s0, x1, #7|9e03e420
        fcvtzs x0, s1, #7|9e18e420
        fcvtzu x0, s1, #7|9e19e420
        fmov d0, d1|1e604020
        fabs d0, d1|1e60c020
        fneg d0, d1|1e614020
        fsqrt d0, d1|1e61c020
        frintn d0, d1|1e644020
        frintp d0, d1|1e64c020
        frintm d0, d1|1e654020
        frintz d0, d1|1e65c020
        frinta d0, d1|1e664020
        frintx d0, d1|1e674020
        frinti d0, d1|1e67c020
        fadd d0, d1, d2|1e622820
        fsub d0, d1, d2|1e623820
        fmul d0, d1, d2|1e620820
        fdiv d0, d1, d2|1e621820
        fmax d0, d1, d2|1e624820
        fmin d0, d1, d2|1e625820
        fmaxnm d0, d1, d2|1e626820
        fminnm d0, d1, d2|1e627820
        fnmul d0, d1, d2|1e628820
        fmadd d0, d1, d2, d3|1f420c20
        fmsub d0, d1, d2, d3|1f428c20
        fnmadd d0, d1, d2, d3|1f620c20
        fnmsub d0, d1, d2, d3|1f628c20
        fcmp d1, d2|1e622020
        fcmp d1, #0.0|1e602028
        fcmpe d1, d2|1e622030
        fcmpe d1, #0.0|1e602038
        fccmp d1, d2, #5, ne|1e621425
        fccmpe d1, d2, #5, ne|1e621435
        fcsel d0, d1, d2, lt|1e62bc20
        fmov d0, #1.25|1e6e9000
        fcvtns w0, d1|1e600020
        fcvtnu w0, d1|1e610020
        fcvtps w0, d1|1e680020
        fcvtpu w0, d1|1e690020
        fcvtms w0, d1|1e700020
        fcvtmu w0, d1|1e710020
        fcvtas w0, d1|1e640020
        fcvtau w0, d1|1e650020
        fcvtzs w0, d1|1e780020
        fcvtzu w0, d1|1e790020
        scvtf d0, w1|1e620020
        scvtf d0, w1, #7|1e42e420
        ucvtf d0, w1|1e630020
        ucvtf d0, w1, #7|1e43e420
        fcvtzs w0, d1, #7|1e58e420
        fcvtzu w0, d1, #7|1e59e420
        fcvtns x0, d1|9e600020
        fcvtnu x0, d1|9e610020
        fcvtps x0, d1|9e680020
        fcvtpu x0, d1|9e690020
        fcvtms x0, d1|9e700020
        fcvtmu x0, d1|9e710020
        fcvtas x0, d1|9e640020
        fcvtau x0, d1|9e650020
        fcvtzs x0, d1|9e780020
        fcvtzu x0, d1|9e790020
        scvtf d0, x1|9e620020
        scvtf d0, x1, #7|9e42e420
        ucvtf d0, x1|9e630020
        ucvtf d0, x1, #7|9e43e420
        fcvtzs x0, d1, #7|9e58e420
        fcvtzu x0, d1, #7|9e59e420
        fmov h0, h1|1ee04020
        fabs h0, h1|1ee0c020
        fneg h0, h1|1ee14020
        fsqrt h0, h1|1ee1c020
        frintn h0, h1|1ee44020
        frintp h0, h1|1ee4c020
        frintm h0, h1|1ee54020
        frintz h0, h1|1ee5c020
        frinta h0, h1|1ee64020
        frintx h0, h1|1ee74020
        frinti h0, h1|1ee7c020
        fadd h0, h1, h2|1ee22820
        fsub h0, h1, h2|1ee23820
        fmul h0, h1, h2|1ee20820
        fdiv h0, h1, h2|1ee21820
        fmax h0, h1, h2|1ee24820
        fmin h0, h1, h2|1ee25820
        fmaxnm h0, h1, h2|1ee26820
        fminnm h0, h1, h2|1ee27820
        fnmul h0, h1, h2|1ee28820
        fmadd h0, h1, h2, h3|1fc20c20
        fmsub h0, h1, h2, h3|1fc28c20
        fnmadd h0, h1, h2, h3|1fe20c20
        fnmsub h0, h1, h2, h3|1fe28c20
        fcmp h1, h2|1ee22020
        fcmp h1, #0.0|1ee02028
        fcmpe h1, h2|1ee22030
        fcmpe h1, #0.0|1ee02038
        fccmp h1, h2, #5, ne|1ee21425
        fccmpe h1, h2, #5, ne|1ee21435
        fcsel h0, h1, h2, lt|1ee2bc20
        fmov h0, #1.25|1eee9000
        fcvtns w0, h1|1ee00020
        fcvtnu w0, h1|1ee10020
        fcvtps w0, h1|1ee80020
        fcvtpu w0, h1|1ee90020
        fcvtms w0, h1|1ef00020
        fcvtmu w0, h1|1ef10020
        fcvtas w0, h1|1ee40020
        fcvtau w0, h1|1ee50020
        fcvtzs w0, h1|1ef80020
        fcvtzu w0, h1|1ef90020
        scvtf h0, w1|1ee20020
        scvtf h0, w1, #7|1ec2e420
        ucvtf h0, w1|1ee30020
        ucvtf h0, w1, #7|1ec3e420
        fcvtzs w0, h1, #7|1ed8e420
        fcvtzu w0, h1, #7|1ed9e420
        fcvtns x0, h1|9ee00020
        fcvtnu x0, h1|9ee10020
        fcvtps x0, h1|9ee80020
        fcvtpu x0, h1|9ee90020
        fcvtms x0, h1|9ef00020
        fcvtmu x0, h1|9ef10020
        fcvtas x0, h1|9ee40020
        fcvtau x0, h1|9ee50020
        fcvtzs x0, h1|9ef80020
        fcvtzu x0, h1|9ef90020
        scvtf h0, x1|9ee20020
        scvtf h0, x1, #7|9ec2e420
        ucvtf h0, x1|9ee30020
        ucvtf h0, x1, #7|9ec3e420
        fcvtzs x0, h1, #7|9ed8e420
        fcvtzu x0, h1, #7|9ed9e420
        fcvt d0, s1|1e22c020
        fcvt s0, d1|1e624020
        fcvt h0, s1|1e23c020
        fcvt h0, d1|1e63c020
        fcvt s0, h1|1ee24020
        fcvt d0, h1|1ee2c020
        fmov w0, s1|1e260020
        fmov s0, w1|1e270020
        fmov x0, d1|9e660020
        fmov d0, x1|9e670020
        fmov x0, v1.d[1]|9eae0020
        fmov v0.d[1], x1|9eaf0020
        fmov w0, h1|1ee60020
        fmov h0, w1|1ee70020
        fmov x0, h1|9ee60020
        fmov h0, x1|9ee70020
        ldr b0, [x1, #16]|3d404020
        str b0, [x1, #16]|3d004020
        ldur b0, [x1, #-16]|3c5f0020
        stur b0, [x1, #-16]|3c1f0020
        ldr b0, [x1], #16|3c410420
        str b0, [x1, #16]!|3c010c20
        ldr b0, [x1, x2]|3c626820
        str b0, [x1, w2, sxtw]|3c22c820
        ldr h0, [x1, #16]|7d402020
        str h0, [x1, #16]|7d002020
        ldur h0, [x1, #-16]|7c5f0020
        stur h0, [x1, #-16]|7c1f0020
        ldr h0, [x1], #16|7c410420
        str h0, [x1, #16]!|7c010c20
        ldr h0, [x1, x2]|7c626820
        str h0, [x1, w2, sxtw]|7c22c820
        ldr s0, [x1, #16]|bd401020
        str s0, [x1, #16]|bd001020
        ldur s0, [x1, #-16]|bc5f0020
        stur s0, [x1, #-16]|bc1f0020
        ldr s0, [x1], #16|bc410420
        str s0, [x1, #16]!|bc010c20
        ldr s0, [x1, x2]|bc626820
        str s0, [x1, w2, sxtw]|bc22c820
        ldr d0, [x1, #16]|fd400820
        str d0, [x1, #16]|fd000820
        ldur d0, [x1, #-16]|fc5f0020
        stur d0, [x1, #-16]|fc1f0020
        ldr d0, [x1], #16|fc410420
        str d0, [x1, #16]!|fc010c20
        ldr d0, [x1, x2]|fc626820
        str d0, [x1, w2, sxtw]|fc22c820
        ldr q0, [x1, #16]|3dc00420
        str q0, [x1, #16]|3d800420
        ldur q0, [x1, #-16]|3cdf0020
        stur q0, [x1, #-16]|3c9f0020
        ldr q0, [x1], #16|3cc10420
        str q0, [x1, #16]!|3c810c20
        ldr q0, [x1, x2]|3ce26820
        str q0, [x1, w2, sxtw]|3ca2c820
        ldr s0, .+16|1c000080
        ldp s0, s1, [x2, #32]|2d440440
        stp s0, s1, [x2], #32|2c840440
        ldp s0, s1, [x2, #-32]!|2dfc0440
        ldnp s0, s1, [x2]|2c400440
        stnp s0, s1, [x2]|2c000440
        ldr d0, .+16|5c000080
        ldp d0, d1, [x2, #32]|6d420440
        stp d0, d1, [x2], #32|6c820440
        ldp d0, d1, [x2, #-32]!|6dfe0440
        ldnp d0, d1, [x2]|6c400440
        stnp d0, d1, [x2]|6c000440
        ldr q0, .+16|9c000080
        ldp q0, q1, [x2, #32]|ad410440
        stp q0, q1, [x2], #32|ac810440
        ldp q0, q1, [x2, #-32]!|adff0440
        ldnp q0, q1, [x2]|ac400440
        stnp q0, q1, [x2]|ac000440
        ld1 {v0.4s}, [x1]|4c407820
        ld1 {v0.4s}, [x1], #16|4cdf7820
        ld1 {v0.4s}, [x1], x2|4cc27820
        ld1 {v0.s}[1], [x1]|0d409020
        ld1 {v0.s}[3], [x1], #4|4ddf9020
        st1 {v0.4s}, [x1]|4c007820
        st1 {v0.4s}, [x1], #16|4c9f7820
        st1 {v0.4s}, [x1], x2|4c827820
        st1 {v0.s}[1], [x1]|0d009020
        st1 {v0.s}[3], [x1], #4|4d9f9020
        ld1r {v0.8h}, [x1]|4d40c420
        ld1r {v0.8h}, [x1], #2|4ddfc420
        ld2 {v0.4s, v1.4s}, [x1]|4c408820
        ld2 {v0.4s, v1.4s}, [x1], #32|4cdf8820
        ld2 {v0.4s, v1.4s}, [x1], x2|4cc28820
        ld2 {v0.s, v1.s}[1], [x1]|0d609020
        ld2 {v0.s, v1.s}[3], [x1], #8|4dff9020
        st2 {v0.4s, v1.4s}, [x1]|4c008820
        st2 {v0.4s, v1.4s}, [x1], #32|4c9f8820
        st2 {v0.4s, v1.4s}, [x1], x2|4c828820
        st2 {v0.s, v1.s}[1], [x1]|0d209020
        st2 {v0.s, v1.s}[3], [x1], #8|4dbf9020
        ld2r {v0.8h, v1.8h}, [x1]|4d60c420
        ld2r {v0.8h, v1.8h}, [x1], #4|4dffc420
        ld3 {v0.4s, v1.4s, v2.4s}, [x1]|4c404820
        ld3 {v0.4s, v1.4s, v2.4s}, [x1], #48|4cdf4820
        ld3 {v0.4s, v1.4s, v2.4s}, [x1], x2|4cc24820
        ld3 {v0.s, v1.s, v2.s}[1], [x1]|0d40b020
        ld3 {v0.s, v1.s, v2.s}[3], [x1], #12|4ddfb020
        st3 {v0.4s, v1.4s, v2.4s}, [x1]|4c004820
        st3 {v0.4s, v1.4s, v2.4s}, [x1], #48|4c9f4820
        st3 {v0.4s, v1.4s, v2.4s}, [x1], x2|4c824820
        st3 {v0.s, v1.s, v2.s}[1], [x1]|0d00b020
        st3 {v0.s, v1.s, v2.s}[3], [x1], #12|4d9fb020
        ld3r {v0.8h, v1.8h, v2.8h}, [x1]|4d40e420
        ld3r {v0.8h, v1.8h, v2.8h}, [x1], #6|4ddfe420
        ld4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1]|4c400820
        ld4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1], #64|4cdf0820
        ld4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1], x2|4cc20820
        ld4 {v0.s, v1.s, v2.s, v3.s}[1], [x1]|0d60b020
        ld4 {v0.s, v1.s, v2.s, v3.s}[3], [x1], #16|4dffb020
        st4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1]|4c000820
        st4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1], #64|4c9f0820
        st4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1], x2|4c820820
        st4 {v0.s, v1.s, v2.s, v3.s}[1], [x1]|0d20b020
        st4 {v0.s, v1.s, v2.s, v3.s}[3], [x1], #16|4dbfb020
        ld4r {v0.8h, v1.8h, v2.8h, v3.8h}, [x1]|4d60e420
        ld4r {v0.8h, v1.8h, v2.8h, v3.8h}, [x1], #8|4dffe420
        ld1 {v0.8b}, [x1]|0c407020
        ld1 {v0.2d, v1.2d}, [x1]|4c40ac20
        st1 {v0.b}[15], [x1]|4d001c20
        ld1 {v0.d}[1], [x1]|4d408420
        aese v0.16b, v1.16b|4e284820
        aesd v0.16b, v1.16b|4e285820
        aesmc v0.16b, v1.16b|4e286820
        aesimc v0.16b, v1.16b|4e287820
        sha1c q0, s1, v2.4s|5e020020
        sha1p q0, s1, v2.4s|5e021020
        sha1m q0, s1, v2.4s|5e022020
        sha1su0 v0.4s, v1.4s, v2.4s|5e023020
        sha256h q0, q1, v2.4s|5e024020
        sha256h2 q0, q1, v2.4s|5e025020
        sha256su1 v0.4s, v1.4s, v2.4s|5e026020
        sha1h s0, s1|5e280820
        sha1su1 v0.4s, v1.4s|5e281820
        sha256su0 v0.4s, v1.4s|5e282820
        mrs x0, fpcr|d53b4400
        msr fpsr, x0|d51b4420
        """;

    /// <summary>
    /// FEAT_FHM, FEAT_FCMA, FEAT_JSCVT and FEAT_SHA512/SHA3/SM3/SM4 forms (ID_AA64ISAR0_EL1.FHM, SHA2 = 2, SHA3, SM3, SM4
    /// and ID_AA64ISAR1_EL1.FCMA, JSCVT = 1 on Neoverse V1 and V2; the .4h/.8h FCMLA and FCADD also need FEAT_FP16):
    /// "assembly|word" as <see cref="Forms"/>.
    /// </summary>
    private const string FeatureForms = """
        fmlal v0.2s, v1.2h, v2.2h|0e22ec20
        fmlal v0.4s, v1.4h, v2.4h|4e22ec20
        fmlal v0.2s, v1.2h, v2.h[0]|0f820020
        fmlal v0.4s, v1.4h, v15.h[7]|4fbf0820
        fmlal2 v0.2s, v1.2h, v2.2h|2e22cc20
        fmlal2 v0.4s, v1.4h, v2.4h|6e22cc20
        fmlal2 v0.2s, v1.2h, v2.h[0]|2f828020
        fmlal2 v0.4s, v1.4h, v15.h[7]|6fbf8820
        fmlsl v0.2s, v1.2h, v2.2h|0ea2ec20
        fmlsl v0.4s, v1.4h, v2.4h|4ea2ec20
        fmlsl v0.2s, v1.2h, v2.h[0]|0f824020
        fmlsl v0.4s, v1.4h, v15.h[7]|4fbf4820
        fmlsl2 v0.2s, v1.2h, v2.2h|2ea2cc20
        fmlsl2 v0.4s, v1.4h, v2.4h|6ea2cc20
        fmlsl2 v0.2s, v1.2h, v2.h[0]|2f82c020
        fmlsl2 v0.4s, v1.4h, v15.h[7]|6fbfc820
        fcmla v0.4h, v1.4h, v2.4h, #0|2e42c420
        fcmla v0.4h, v1.4h, v2.4h, #90|2e42cc20
        fcmla v0.4h, v1.4h, v2.4h, #180|2e42d420
        fcmla v0.4h, v1.4h, v2.4h, #270|2e42dc20
        fcadd v0.4h, v1.4h, v2.4h, #90|2e42e420
        fcadd v0.4h, v1.4h, v2.4h, #270|2e42f420
        fcmla v0.8h, v1.8h, v2.8h, #0|6e42c420
        fcmla v0.8h, v1.8h, v2.8h, #90|6e42cc20
        fcmla v0.8h, v1.8h, v2.8h, #180|6e42d420
        fcmla v0.8h, v1.8h, v2.8h, #270|6e42dc20
        fcadd v0.8h, v1.8h, v2.8h, #90|6e42e420
        fcadd v0.8h, v1.8h, v2.8h, #270|6e42f420
        fcmla v0.2s, v1.2s, v2.2s, #0|2e82c420
        fcmla v0.2s, v1.2s, v2.2s, #90|2e82cc20
        fcmla v0.2s, v1.2s, v2.2s, #180|2e82d420
        fcmla v0.2s, v1.2s, v2.2s, #270|2e82dc20
        fcadd v0.2s, v1.2s, v2.2s, #90|2e82e420
        fcadd v0.2s, v1.2s, v2.2s, #270|2e82f420
        fcmla v0.4s, v1.4s, v2.4s, #0|6e82c420
        fcmla v0.4s, v1.4s, v2.4s, #90|6e82cc20
        fcmla v0.4s, v1.4s, v2.4s, #180|6e82d420
        fcmla v0.4s, v1.4s, v2.4s, #270|6e82dc20
        fcadd v0.4s, v1.4s, v2.4s, #90|6e82e420
        fcadd v0.4s, v1.4s, v2.4s, #270|6e82f420
        fcmla v0.2d, v1.2d, v2.2d, #0|6ec2c420
        fcmla v0.2d, v1.2d, v2.2d, #90|6ec2cc20
        fcmla v0.2d, v1.2d, v2.2d, #180|6ec2d420
        fcmla v0.2d, v1.2d, v2.2d, #270|6ec2dc20
        fcadd v0.2d, v1.2d, v2.2d, #90|6ec2e420
        fcadd v0.2d, v1.2d, v2.2d, #270|6ec2f420
        fcmla v0.4h, v1.4h, v2.h[0], #0|2f421020
        fcmla v0.4h, v1.4h, v2.h[1], #0|2f621020
        fcmla v0.8h, v1.8h, v2.h[0], #0|6f421020
        fcmla v0.8h, v1.8h, v2.h[1], #0|6f621020
        fcmla v0.8h, v1.8h, v2.h[2], #0|6f421820
        fcmla v0.8h, v1.8h, v2.h[3], #0|6f621820
        fcmla v0.4s, v1.4s, v2.s[0], #0|6f821020
        fcmla v0.4s, v1.4s, v2.s[1], #0|6f821820
        fcmla v0.4h, v1.4h, v2.h[0], #90|2f423020
        fcmla v0.4h, v1.4h, v2.h[1], #90|2f623020
        fcmla v0.8h, v1.8h, v2.h[0], #90|6f423020
        fcmla v0.8h, v1.8h, v2.h[1], #90|6f623020
        fcmla v0.8h, v1.8h, v2.h[2], #90|6f423820
        fcmla v0.8h, v1.8h, v2.h[3], #90|6f623820
        fcmla v0.4s, v1.4s, v2.s[0], #90|6f823020
        fcmla v0.4s, v1.4s, v2.s[1], #90|6f823820
        fcmla v0.4h, v1.4h, v2.h[0], #180|2f425020
        fcmla v0.4h, v1.4h, v2.h[1], #180|2f625020
        fcmla v0.8h, v1.8h, v2.h[0], #180|6f425020
        fcmla v0.8h, v1.8h, v2.h[1], #180|6f625020
        fcmla v0.8h, v1.8h, v2.h[2], #180|6f425820
        fcmla v0.8h, v1.8h, v2.h[3], #180|6f625820
        fcmla v0.4s, v1.4s, v2.s[0], #180|6f825020
        fcmla v0.4s, v1.4s, v2.s[1], #180|6f825820
        fcmla v0.4h, v1.4h, v2.h[0], #270|2f427020
        fcmla v0.4h, v1.4h, v2.h[1], #270|2f627020
        fcmla v0.8h, v1.8h, v2.h[0], #270|6f427020
        fcmla v0.8h, v1.8h, v2.h[1], #270|6f627020
        fcmla v0.8h, v1.8h, v2.h[2], #270|6f427820
        fcmla v0.8h, v1.8h, v2.h[3], #270|6f627820
        fcmla v0.4s, v1.4s, v2.s[0], #270|6f827020
        fcmla v0.4s, v1.4s, v2.s[1], #270|6f827820
        fcmla v0.8h, v1.8h, v31.h[1], #90|6f7f3020
        fcmla v0.4s, v1.4s, v31.s[1], #270|6f9f7820
        fjcvtzs w0, d1|1e7e0020
        sha512h q0, q1, v2.2d|ce628020
        sha512h2 q0, q1, v2.2d|ce628420
        sha512su0 v0.2d, v1.2d|cec08020
        sha512su1 v0.2d, v1.2d, v2.2d|ce628820
        eor3 v0.16b, v1.16b, v2.16b, v3.16b|ce020c20
        rax1 v0.2d, v1.2d, v2.2d|ce628c20
        xar v0.2d, v1.2d, v2.2d, #10|ce822820
        bcax v0.16b, v1.16b, v2.16b, v3.16b|ce220c20
        sm3ss1 v0.4s, v1.4s, v2.4s, v3.4s|ce420c20
        sm3tt1a v0.4s, v1.4s, v2.s[3]|ce42b020
        sm3tt1b v0.4s, v1.4s, v2.s[3]|ce42b420
        sm3tt2a v0.4s, v1.4s, v2.s[3]|ce42b820
        sm3tt2b v0.4s, v1.4s, v2.s[3]|ce42bc20
        sm3partw1 v0.4s, v1.4s, v2.4s|ce62c020
        sm3partw2 v0.4s, v1.4s, v2.4s|ce62c420
        sm4e v0.4s, v1.4s|cec08420
        sm4ekey v0.4s, v1.4s, v2.4s|ce62c820
        """;

    /// <summary>FEAT_FRINTTS forms (ID_AA64ISAR1_EL1.FRINTTS = 1 on Neoverse V2 only).</summary>
    private const string V2Forms = """
        frint32z s0, s1|1e284020
        frint32z d0, d1|1e684020
        frint32z v0.2s, v1.2s|0e21e820
        frint32z v0.4s, v1.4s|4e21e820
        frint32z v0.2d, v1.2d|4e61e820
        frint32x s0, s1|1e28c020
        frint32x d0, d1|1e68c020
        frint32x v0.2s, v1.2s|2e21e820
        frint32x v0.4s, v1.4s|6e21e820
        frint32x v0.2d, v1.2d|6e61e820
        frint64z s0, s1|1e294020
        frint64z d0, d1|1e694020
        frint64z v0.2s, v1.2s|0e21f820
        frint64z v0.4s, v1.4s|4e21f820
        frint64z v0.2d, v1.2d|4e61f820
        frint64x s0, s1|1e29c020
        frint64x d0, d1|1e69c020
        frint64x v0.2s, v1.2s|2e21f820
        frint64x v0.4s, v1.4s|6e21f820
        frint64x v0.2d, v1.2d|6e61f820
        """;

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static (string Asm, uint Word)[] Parse(string forms) =>
        [.. Lines(forms).Select(l => l.Split('|')).Select(p => (p[0], Convert.ToUInt32(p[1], 16)))];

    private static (string Asm, uint Word)[] Parse() => [.. Parse(Forms), .. Parse(FeatureForms), .. Parse(V2Forms)];

    /// <summary>Each list with the presets it runs on.</summary>
    private static IEnumerable<(string Asm, uint Word, Arm64CpuModel Model)> Sweep() =>
    [
        .. Parse(Forms).Select(f => (f.Asm, f.Word, Arm64CpuModel.NeoverseV1)),
        .. Parse(FeatureForms).SelectMany(f => new[] { (f.Asm, f.Word, Arm64CpuModel.NeoverseV1), (f.Asm, f.Word, Arm64CpuModel.NeoverseV2) }),
        .. Parse(V2Forms).Select(f => (f.Asm, f.Word, Arm64CpuModel.NeoverseV2)),
    ];

    /// <summary>Every listed form runs to the end of its program (decoded and executed) on its presets.</summary>
    [Fact]
    public void Every_listed_advsimd_and_fp_form_decodes_and_runs()
    {
        var failures = new List<string>();
        foreach (var (asm, word, model) in Sweep())
        {
            using var s = Arm64TestVm.RunningWords(model, word);
            var v = s.AddVcpu();
            v.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x30_0000UL);
            v.SetOneReg(KvmArm64Regs.X(1), 0x4000);
            v.SetOneReg(KvmArm64Regs.X(2), 0x1000);
            var reason = v.RunBounded().Reason;
            if (reason == KvmExitReason.KVM_EXIT_INTERNAL_ERROR) failures.Add($"{asm} (0x{word:x8}, {model.Name}): not emulated");
            else if (v.GetOneReg(KvmArm64Regs.X(9)) != Arm64Guest.UcallDone)
                failures.Add($"{asm} (0x{word:x8}, {model.Name}): exception, ESR_EL1 0x{v.GetOneReg(KvmArm64SysRegs.ESR_EL1):x}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} forms fail:\n" + string.Join("\n", failures));
    }

    /// <summary>The words are what aarch64-linux-gnu-as assembles the forms to (skips, with the reason, without it).</summary>
    [SkippableFact]
    public void The_listed_words_are_the_assembler_s()
    {
        var forms = Parse();
        string dir = Path.Combine(Path.GetTempPath(), $"kvmsharp-simd-coverage-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            AssembleAndCompare(forms, dir);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void AssembleAndCompare((string Asm, uint Word)[] forms, string dir)
    {
        string source = Path.Combine(dir, "forms.s"), obj = Path.Combine(dir, "forms.o"), bin = Path.Combine(dir, "forms.bin");
        File.WriteAllText(source, ".arch armv8.5-a+fp16+fp16fml+crypto+rdma+dotprod+sha3+sm4\n" + string.Join("\n", forms.Select(f => f.Asm)) + "\n");
        var (code, output) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-as", ["-o", obj, source]);
        Skip.If(code == -1, $"aarch64-linux-gnu-as (package binutils-aarch64-linux-gnu) is not available: {output}");
        Assert.True(code == 0, output);
        (code, output) = Arm64SveCorpusTests.Exec("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", obj, bin]);
        Skip.If(code == -1, $"aarch64-linux-gnu-objcopy is not available: {output}");
        Assert.True(code == 0, output);
        byte[] text = File.ReadAllBytes(bin);
        Assert.Equal(4 * forms.Length, text.Length);
        var differ = forms.Where((f, i) => BitConverter.ToUInt32(text, 4 * i) != f.Word).Select(f => f.Asm).ToList();
        Assert.Empty(differ);
    }
}
