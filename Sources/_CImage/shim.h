// The system image decoders: libjpeg-turbo (jpeglib.h) and libpng (png.h).
#include <stdio.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <png.h>
