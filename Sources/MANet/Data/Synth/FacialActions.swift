// Facial-action intensities (loosely FACS action units) and the seven expression prototypes the synthetic dataset samples around.

import ManetSupport

/// How far each facial action is engaged. 0 is a relaxed face, except `eyeOpen` where 1 is a
/// relaxed eye (above 1 wide, below 1 narrowed, near 0 closed). Ranges are soft: samples
/// overshoot them a little.
public struct FacialActions: Sendable, Equatable {
    /// AU1+2: the whole brow lifts.
    public var browRaise = 0.0
    /// AU1: the inner ends of the brows lift (grief, worry).
    public var browInnerRaise = 0.0
    /// AU4: brows pulled down and together, with furrows between them.
    public var browLower = 0.0
    /// AU5 (above 1) / AU7 (below 1): eyelid aperture.
    public var eyeOpen = 1.0
    /// AU6: cheeks lift, lower lids bunch.
    public var cheekRaise = 0.0
    /// AU9: wrinkles across the nose bridge.
    public var noseWrinkle = 0.0
    /// AU10: the upper lip lifts.
    public var upperLipRaise = 0.0
    /// AU12 (positive, smile) / AU15 (negative, corners pulled down).
    public var lipCorner = 0.0
    /// AU20: lips stretched sideways.
    public var lipStretch = 0.0
    /// AU23/24: lips pressed thin.
    public var lipPress = 0.0
    /// AU25-27: jaw drop / mouth opening.
    public var mouthOpen = 0.0

    public init() {}

    /// The prototype of RAF-DB class `label` (0 Neutral, 1 Happiness, 2 Sadness, 3 Surprise,
    /// 4 Fear, 5 Disgust, 6 Anger).
    public static func prototype(_ label: Int) -> FacialActions {
        var a = FacialActions()
        switch label {
        case 1:  // Happiness: smile, raised cheeks, narrowed eyes, often teeth.
            a.lipCorner = 1; a.cheekRaise = 0.85; a.eyeOpen = 0.72; a.mouthOpen = 0.35; a.lipStretch = 0.3
        case 2:  // Sadness: inner brows up, corners down, heavy lids.
            a.browInnerRaise = 1; a.browLower = 0.25; a.lipCorner = -0.85; a.eyeOpen = 0.75; a.lipPress = 0.2
        case 3:  // Surprise: brows up, eyes wide, jaw dropped.
            a.browRaise = 1; a.eyeOpen = 1.5; a.mouthOpen = 1; a.lipStretch = -0.35
        case 4:  // Fear: brows up and together, eyes wide, lips stretched, mouth ajar.
            a.browRaise = 0.6; a.browInnerRaise = 0.7; a.browLower = 0.35; a.eyeOpen = 1.45
            a.lipStretch = 0.9; a.mouthOpen = 0.45; a.lipCorner = -0.25
        case 5:  // Disgust: nose wrinkle, upper lip raised, brows lowered, narrowed eyes.
            a.noseWrinkle = 1; a.upperLipRaise = 0.9; a.browLower = 0.5; a.eyeOpen = 0.7
            a.lipCorner = -0.35; a.cheekRaise = 0.3
        case 6:  // Anger: brows down and together, glaring eyes, lips pressed.
            a.browLower = 1; a.eyeOpen = 0.95; a.lipPress = 0.9; a.lipCorner = -0.25
        default:  // Neutral.
            break
        }
        return a
    }

    /// Every action as a vector, in declaration order (`eyeOpen` measured from 1).
    var deviations: [Double] {
        [browRaise, browInnerRaise, browLower, eyeOpen - 1, cheekRaise, noseWrinkle, upperLipRaise,
         lipCorner, lipStretch, lipPress, mouthOpen]
    }

    init(deviations d: [Double]) {
        browRaise = d[0]; browInnerRaise = d[1]; browLower = d[2]; eyeOpen = 1 + d[3]; cheekRaise = d[4]
        noseWrinkle = d[5]; upperLipRaise = d[6]; lipCorner = d[7]; lipStretch = d[8]; lipPress = d[9]; mouthOpen = d[10]
    }

    /// A sample around class `label`'s prototype: a random intensity (people emote more or less),
    /// per-action jitter, and sometimes a partial blend with another class (real expressions are
    /// mixed, which keeps the classes from being linearly separable).
    ///
    /// The weakest intensity (0.7) and the blends (15 %, at most 0.35 of the other class) are
    /// kept well away from the class boundaries: at 0.45 and 25 % up to 0.5, with 0.14 jitter,
    /// a weak sadness and a neutral face with a little sadness blended in were the same face,
    /// and a reduced-width MA-Net stayed at chance.
    public static func sample(label: Int, using rng: inout Xoshiro256) -> FacialActions {
        var d = prototype(label).deviations
        let intensity = rng.uniform(0.7, 1.2)
        d = d.map { $0 * intensity }
        if rng.chance(0.15) {
            let other = rng.nextInt(in: 0...6)
            let weight = rng.uniform(0.15, 0.35)
            let o = prototype(other).deviations
            for i in d.indices { d[i] += weight * o[i] }
        }
        for i in d.indices { d[i] += 0.1 * rng.normal() }
        var a = FacialActions(deviations: d)
        // Physical limits: intensities are not negative (except lip corners), eyes cannot open below shut.
        a.browRaise = max(a.browRaise, -0.3)
        a.browInnerRaise = max(a.browInnerRaise, -0.2)
        a.browLower = max(a.browLower, 0)
        a.eyeOpen = min(max(a.eyeOpen, 0.05), 1.8)
        a.cheekRaise = max(a.cheekRaise, 0)
        a.noseWrinkle = max(a.noseWrinkle, 0)
        a.upperLipRaise = max(a.upperLipRaise, 0)
        a.lipCorner = min(max(a.lipCorner, -1.3), 1.3)
        a.lipPress = min(max(a.lipPress, 0), 1)
        a.mouthOpen = min(max(a.mouthOpen, 0), 1.3)
        return a
    }
}
