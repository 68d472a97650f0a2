// Draws one posed face with given facial actions, identity and occluders, over a cluttered background, then degrades it like a photo.

import Foundation
import ManetSupport

/// Everything random about one synthetic photo besides the expression: who, where, and what is
/// in the way. Drawn from the image's own generator so each image is reproducible alone.
struct SceneParameters {
    // Identity.
    var skin: Colour
    var hair: Colour
    var hasHair: Bool
    var fringe: Bool
    var lips: Colour
    var iris: Colour
    var clothing: Colour
    var faceWidth: Double
    var eyeSpacing: Double
    var eyeHeight: Double
    var mouthHeight: Double
    var browThickness: Double
    // Pose.
    var roll: Double
    var yaw: Double
    var zoom: Double
    var shift: Point2
    // Occluders.
    var glasses: Bool
    var sunglasses: Bool
    var mask: Bool
    var hand: Bool
    var blocks: Int
    // Photo.
    var lightAngle: Double
    var lightLow: Double
    var lightHigh: Double
    var tint: Colour
    var blurPasses: Int
    var noise: Double
    var jpegQuality: Int

    /// `nuisance` scales every nuisance: pose ranges, occluder and blur probabilities, lighting
    /// contrast, noise and how low the JPEG quality goes. 1 is the default, moderate level: each
    /// kind still appears (a face in ten wears glasses, one in sixteen has a hand in front, ...)
    /// but leaves the facial actions readable at 64 pixels. 0 gives clean, frontal faces.
    init(nuisance: Double = 1, using rng: inout Xoshiro256) {
        let k = max(nuisance, 0)
        /// A probability scaled by the nuisance level.
        func p(_ base: Double) -> Double { min(base * k, 1) }
        // Skin tones from deep brown to pale, with a little hue jitter.
        let tone = rng.uniform(0, 1)
        skin = Colour(0.36, 0.22, 0.15).mixed(Colour(0.96, 0.80, 0.68), tone)
            .mixed(Colour(rng.uniform(0.5, 1), rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.8)), 0.08)
        let hairChoices = [Colour(0.08, 0.06, 0.05), Colour(0.3, 0.18, 0.1), Colour(0.55, 0.38, 0.2),
                           Colour(0.85, 0.72, 0.45), Colour(0.6, 0.6, 0.6), Colour(0.5, 0.15, 0.08)]
        hair = hairChoices[rng.nextInt(in: 0...(hairChoices.count - 1))].scaled(rng.uniform(0.8, 1.2))
        hasHair = rng.chance(0.85)
        fringe = hasHair && rng.chance(0.35)
        // Lips well away from the skin tone: the mouth carries four of the seven classes.
        lips = skin.mixed(Colour(0.55, 0.12, 0.15), rng.uniform(0.55, 0.85))
        iris = [Colour(0.25, 0.15, 0.08), Colour(0.2, 0.35, 0.55), Colour(0.3, 0.45, 0.25), Colour(0.1, 0.08, 0.06)][rng.nextInt(in: 0...3)]
        clothing = Colour(rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1))
        faceWidth = rng.uniform(0.62, 0.8)
        eyeSpacing = rng.uniform(0.26, 0.33)
        eyeHeight = rng.uniform(-0.2, -0.1)
        mouthHeight = rng.uniform(0.44, 0.56)
        // Thick enough to stay a few pixels wide at 64 px, where the brows decide anger and sadness.
        browThickness = rng.uniform(0.03, 0.045)

        // Earlier levels (roll +-0.35, yaw +-0.55, zoom down to 0.78, glasses 20 %, masks 7 %,
        // hands 10 %, blocks 20 %, blur 30 %, quality down to 25) hid or shrank the actions
        // in most images; these keep every kind present but at moderate strength.
        // Shifts, zoom and roll stay wide enough that features do not sit on fixed pixels: with
        // +-0.06 shifts a linear classifier on pixels came close to the network.
        roll = k * rng.uniform(-0.25, 0.25)
        yaw = k * rng.uniform(-0.35, 0.35)
        zoom = 1 + k * rng.uniform(-0.15, 0.08)
        shift = Point2(k * rng.uniform(-0.1, 0.1), k * rng.uniform(-0.07, 0.08))

        glasses = rng.chance(p(0.12))
        sunglasses = glasses && rng.chance(0.2)
        mask = rng.chance(p(0.04))
        hand = rng.chance(p(0.06))
        blocks = rng.chance(p(0.12)) ? 1 : 0

        lightAngle = rng.uniform(0, 2 * Double.pi)
        lightLow = 1 - k * rng.uniform(0, 0.3)
        lightHigh = 1 + k * rng.uniform(0, 0.2)
        let t = 0.08 * k
        tint = Colour(1 + rng.uniform(-t, t), 1 + rng.uniform(-t, t), 1 + rng.uniform(-t, t))
        blurPasses = rng.chance(p(0.15)) ? 1 : 0
        noise = k * rng.uniform(0, 0.025)
        jpegQuality = rng.nextInt(in: max(25, min(95, Int((95 - 55 * k).rounded())))...95)
    }
}

/// Renders synthetic face photos. The face frame has its origin between the cheekbones,
/// y pointing down, and the chin near y = 0.95.
enum FaceRenderer {
    static func render(actions a: FacialActions, scene s: SceneParameters, size: Int, using rng: inout Xoshiro256) -> RGBImage {
        let n = Double(size)
        var canvas = Canvas(width: size, height: size, fill: Colour(rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1)))
        drawClutter(&canvas, count: rng.nextInt(in: 2...6), using: &rng)

        // The face fills the frame like RAF-DB's aligned crops (0.42 left the features a few
        // pixels tall at 64 px, below what a small network could read through the nuisances).
        let pose = Affine(center: Point2(n * (0.5 + s.shift.x), n * (0.53 + s.shift.y)), scale: n * 0.5 * s.zoom,
                          angle: s.roll, squeeze: cos(s.yaw))
        // Yaw also slides features across the face, more for those that stick out (the nose).
        let slide = { (depth: Double) in Point2(sin(s.yaw) * depth, 0) }
        func draw(_ shape: Shape, _ colour: Colour, _ opacity: Double = 1) {
            canvas.fill(shape, colour, opacity: opacity, transform: pose)
        }

        // Shoulders, neck, hair mass, ears, face.
        draw(.ellipse(center: Point2(0, 1.85), rx: 1.5, ry: 0.75, angle: 0), s.clothing)
        draw(.rectangle(center: Point2(0, 1.05), width: s.faceWidth * 0.75, height: 0.8), s.skin.scaled(0.85))
        if s.hasHair { draw(.ellipse(center: Point2(0, -0.3), rx: s.faceWidth + 0.14, ry: 0.95, angle: 0), s.hair) }
        for side in [-1.0, 1.0] {
            draw(.ellipse(center: Point2(side * s.faceWidth, -0.02), rx: 0.08, ry: 0.15, angle: 0) , s.skin.scaled(0.92))
        }
        draw(.ellipse(center: Point2(0, 0), rx: s.faceWidth, ry: 0.95, angle: 0), s.skin)
        if s.fringe {
            draw(.polygon([Point2(-s.faceWidth, -0.45), Point2(-0.3, -0.62), Point2(0.4, -0.58), Point2(s.faceWidth, -0.42),
                           Point2(s.faceWidth * 0.9, -0.9), Point2(-s.faceWidth * 0.9, -0.9)]), s.hair)
        }
        let crease = s.skin.scaled(0.6)
        let featureShift = slide(0.12)

        // Forehead lines when the brows lift.
        let lift = max(a.browRaise, a.browInnerRaise * 0.6)
        if lift > 0.3 && !s.fringe {
            for k in 0..<3 {
                let y = -0.58 - 0.07 * Double(k)
                draw(.curve(Point2(-0.3, y) + featureShift, Point2(0, y - 0.04) + featureShift, Point2(0.3, y) + featureShift,
                            halfWidth: 0.008), crease, min(1, (lift - 0.3) * 0.9))
            }
        }

        // Brows: inner ends at |x| = 0.1, outer at 0.45.
        // Movements about 1.5x anatomical so a raised, inner-raised or lowered brow moves it by
        // several pixels at 64 px; brows darker than the hair so blond brows still show.
        let browColour = s.hair.scaled(0.55).mixed(s.skin, 0.15)
        for side in [-1.0, 1.0] {
            let base = s.eyeHeight - 0.2 - 0.15 * a.browRaise
            let inner = Point2(side * (0.1 - 0.05 * a.browLower), base - 0.14 * a.browInnerRaise + 0.13 * a.browLower) + featureShift
            let outer = Point2(side * 0.45, base + 0.05 * a.browInnerRaise - 0.03 * a.browLower) + featureShift
            let control = Point2(side * 0.28, base - 0.06 - 0.03 * a.browRaise + 0.04 * a.browLower) + featureShift
            draw(.curve(inner, control, outer, halfWidth: s.browThickness), browColour)
        }
        if a.browLower > 0.3 {
            for side in [-1.0, 1.0] {
                let x = side * 0.035
                draw(.stroke(points: [Point2(x, s.eyeHeight - 0.2) + featureShift, Point2(x * 0.6, s.eyeHeight - 0.09) + featureShift],
                             halfWidth: 0.016), crease, min(1, a.browLower - 0.2))
            }
        }

        // Eyes.
        for side in [-1.0, 1.0] {
            let center = Point2(side * s.eyeSpacing, s.eyeHeight) + featureShift
            let rx = 0.14, ry = 0.075 * a.eyeOpen
            if ry < 0.014 {
                draw(.curve(center + Point2(-rx, 0), center + Point2(0, 0.03), center + Point2(rx, 0), halfWidth: 0.012), crease.scaled(0.6))
            } else {
                let eye = Shape.ellipse(center: center, rx: rx, ry: ry, angle: 0)
                draw(eye, Colour(0.95, 0.94, 0.92))
                draw(.intersection(.ellipse(center: center, rx: 0.055, ry: 0.055, angle: 0), eye), s.iris)
                draw(.intersection(.ellipse(center: center, rx: 0.024, ry: 0.024, angle: 0), eye), Colour(0.02, 0.02, 0.02))
                draw(.curve(center + Point2(-rx, 0), center + Point2(0, -2 * ry), center + Point2(rx, 0), halfWidth: 0.013), crease.scaled(0.5))
            }
            if a.cheekRaise > 0.2 {
                // Bunched lower lid and raised cheek.
                draw(.curve(center + Point2(-0.11, ry + 0.03), center + Point2(0, ry + 0.08), center + Point2(0.11, ry + 0.03),
                            halfWidth: 0.014), crease, min(1, a.cheekRaise - 0.1))
                draw(.ellipse(center: center + Point2(side * 0.06, 0.28), rx: 0.16, ry: 0.1, angle: 0),
                     s.skin.mixed(Colour(0.85, 0.35, 0.35), 0.5), 0.5 * min(1, a.cheekRaise))
            }
        }

        // Nose.
        let noseShift = slide(0.22)
        draw(.curve(Point2(0.02, s.eyeHeight + 0.05) + noseShift, Point2(0.06, 0.1) + noseShift, Point2(0.0, 0.22) + noseShift,
                    halfWidth: 0.011), crease, 0.45)
        for side in [-1.0, 1.0] {
            draw(.ellipse(center: Point2(side * 0.065, 0.245 - 0.03 * a.upperLipRaise) + noseShift, rx: 0.032, ry: 0.018, angle: side * 0.3),
                 crease.scaled(0.55))
        }
        if a.noseWrinkle > 0.2 {
            for k in 0..<3 {
                let y = s.eyeHeight + 0.1 + 0.045 * Double(k)
                draw(.curve(Point2(-0.09, y + 0.01) + noseShift, Point2(0, y - 0.02) + noseShift, Point2(0.09, y + 0.01) + noseShift,
                            halfWidth: 0.015), crease.scaled(0.8), min(1, a.noseWrinkle))
            }
        }

        // Mouth: corners, upper and lower lip lines.
        let mouthShift = slide(0.14)
        let y0 = s.mouthHeight
        // Corner lift, stretch and opening about 1.5x anatomical, for the same reason as the brows.
        let halfWidth = 0.21 * (1 + 0.35 * a.lipStretch + 0.15 * max(a.lipCorner, 0))
        let cornerY = y0 - 0.12 * a.lipCorner
        let opening = 0.26 * a.mouthOpen
        let left = Point2(-halfWidth, cornerY) + mouthShift, right = Point2(halfWidth, cornerY) + mouthShift
        let upperControl = Point2(0, y0 + 0.06 * a.lipCorner - opening * 0.6 - 0.1 * a.upperLipRaise) + mouthShift
        let lowerControl = Point2(0, y0 + 0.1 * a.lipCorner + opening * 1.4) + mouthShift
        let lipHalf = 0.03 * (1 - 0.65 * a.lipPress)

        // Nasolabial folds, deeper with smiles and sneers.
        let fold = 0.15 + 0.5 * max(a.cheekRaise, a.upperLipRaise, a.lipStretch * 0.5)
        for side in [-1.0, 1.0] {
            let corner = side < 0 ? left : right
            draw(.curve(Point2(side * 0.13, 0.22) + noseShift, Point2(side * (halfWidth + 0.06), (0.22 + cornerY) / 2) + mouthShift,
                        corner + Point2(side * 0.05, 0.03), halfWidth: 0.01), crease, min(1, fold))
        }
        if opening > 0.02 {
            let upper = Shape.bezierPoints(left, upperControl, right)
            let lower = Shape.bezierPoints(right, lowerControl, left)
            let cavity = Shape.polygon(upper + lower)
            draw(cavity, Colour(0.22, 0.05, 0.07))
            if a.lipCorner > 0.3 || a.upperLipRaise > 0.4 || a.mouthOpen > 0.8 {
                let top = min(upperControl.y, cornerY)
                draw(.intersection(.rectangle(center: Point2(mouthShift.x, top + 0.05), width: 2 * halfWidth, height: 0.09), cavity),
                     Colour(0.93, 0.92, 0.88))
            }
            draw(.curve(left, upperControl, right, halfWidth: lipHalf), s.lips)
            draw(.curve(left, lowerControl, right, halfWidth: lipHalf * 1.3), s.lips)
        } else {
            let middle = Point2(0, y0 + 0.1 * a.lipCorner - 0.07 * a.upperLipRaise) + mouthShift
            draw(.curve(left, middle - Point2(0, lipHalf * 1.1), right, halfWidth: lipHalf), s.lips)
            draw(.curve(left, middle + Point2(0, lipHalf * 1.5), right, halfWidth: lipHalf * 1.3), s.lips)
            draw(.curve(left, middle, right, halfWidth: 0.012), Colour(0.3, 0.1, 0.1), 0.9)
        }

        drawOccluders(&canvas, scene: s, pose: pose, featureShift: featureShift, using: &rng)

        canvas.applyLighting(direction: s.lightAngle, low: s.lightLow, high: s.lightHigh, tint: s.tint)
        if s.blurPasses > 0 { canvas.blur(passes: s.blurPasses) }
        canvas.addNoise(sigma: s.noise, using: &rng)
        return canvas.image()
    }

    /// Background objects: rectangles, blobs and lines in random colours, in pixel space.
    private static func drawClutter(_ canvas: inout Canvas, count: Int, using rng: inout Xoshiro256) {
        let n = Double(canvas.width)
        for _ in 0..<count {
            let colour = Colour(rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1))
            let center = Point2(rng.uniform(0, n), rng.uniform(0, n))
            switch rng.nextInt(in: 0...2) {
            case 0:
                canvas.fill(.rectangle(center: center, width: rng.uniform(0.1, 0.6) * n, height: rng.uniform(0.1, 0.6) * n,
                                       angle: rng.uniform(-0.5, 0.5)), colour)
            case 1:
                canvas.fill(.ellipse(center: center, rx: rng.uniform(0.05, 0.3) * n, ry: rng.uniform(0.05, 0.3) * n,
                                     angle: rng.uniform(0, 3.2)), colour)
            default:
                canvas.fill(.stroke(points: [center, Point2(rng.uniform(0, n), rng.uniform(0, n))], halfWidth: rng.uniform(0.005, 0.03) * n), colour)
            }
        }
    }

    private static func drawOccluders(_ canvas: inout Canvas, scene s: SceneParameters, pose: Affine, featureShift: Point2,
                                      using rng: inout Xoshiro256) {
        func draw(_ shape: Shape, _ colour: Colour, _ opacity: Double = 1) {
            canvas.fill(shape, colour, opacity: opacity, transform: pose)
        }
        if s.glasses {
            let frame = Colour(rng.uniform(0, 0.4), rng.uniform(0, 0.3), rng.uniform(0, 0.3))
            for side in [-1.0, 1.0] {
                let lens = Shape.ellipse(center: Point2(side * s.eyeSpacing, s.eyeHeight + 0.01) + featureShift, rx: 0.18, ry: 0.13, angle: 0)
                if s.sunglasses { draw(lens, Colour(0.05, 0.05, 0.07), rng.uniform(0.8, 0.95)) }
                draw(.outline(lens, halfWidth: 0.016), frame)
                draw(.stroke(points: [Point2(side * (s.eyeSpacing + 0.18), s.eyeHeight) + featureShift,
                                      Point2(side * s.faceWidth, s.eyeHeight - 0.02)], halfWidth: 0.014), frame)
            }
            draw(.curve(Point2(-s.eyeSpacing + 0.18, s.eyeHeight) + featureShift, Point2(0, s.eyeHeight - 0.05) + featureShift,
                        Point2(s.eyeSpacing - 0.18, s.eyeHeight) + featureShift, halfWidth: 0.014), frame)
        }
        if s.mask {
            let colour = [Colour(0.85, 0.9, 0.95), Colour(0.95, 0.95, 0.95), Colour(0.2, 0.2, 0.25)][rng.nextInt(in: 0...2)]
            draw(.polygon([Point2(-s.faceWidth, 0.12), Point2(s.faceWidth, 0.12), Point2(s.faceWidth * 0.8, 0.7),
                           Point2(0, 0.95), Point2(-s.faceWidth * 0.8, 0.7)].map { $0 + featureShift }), colour)
        }
        if s.hand {
            let center = Point2(rng.uniform(-0.6, 0.6), rng.uniform(0.1, 0.9))
            let tilt = rng.uniform(-0.6, 0.6)
            let skin = s.skin.mixed(Colour(0.9, 0.7, 0.6), 0.3)
            draw(.ellipse(center: center, rx: 0.24, ry: 0.3, angle: tilt), skin)
            for k in 0..<4 {
                let angle = tilt - Double.pi / 2 + (Double(k) - 1.5) * 0.28
                let base = center + Point2(cos(angle), sin(angle)) * 0.2
                draw(.stroke(points: [base, base + Point2(cos(angle), sin(angle)) * rng.uniform(0.22, 0.32)], halfWidth: 0.05), skin)
            }
        }
        let n = Double(canvas.width)
        for _ in 0..<s.blocks {
            canvas.fill(.rectangle(center: Point2(rng.uniform(0, n), rng.uniform(0, n)), width: rng.uniform(0.08, 0.2) * n,
                                   height: rng.uniform(0.08, 0.2) * n), Colour(rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1)))
        }
    }
}
