// Reading QR codes in the browser with the vendored jsQR (a global `jsQR`): from a
// still image (an uploaded file) and from camera frames.

const MAX_SIDE = 1600; // larger photos are scaled down: jsQR's time grows with pixels

/** The text of the QR code in `imageData`, or null when none is found. */
export function decodeImageData(imageData) {
  const found = jsQR(imageData.data, imageData.width, imageData.height, {
    inversionAttempts: "attemptBoth",
  });
  return found ? found.data : null;
}

/** The pixels of an image file (or blob), scaled so that its longer side fits MAX_SIDE. */
export async function imageDataOfBlob(blob) {
  const bitmap = await createImageBitmap(blob);
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return context.getImageData(0, 0, width, height);
}

/**
 * Scan camera frames until a QR code is read: calls onText(text) once and stops.
 * Returns stop(), which releases the camera.
 */
export async function scanCamera(video, onText) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: "environment" },
    audio: false,
  });
  video.srcObject = stream;
  await video.play();
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  let running = true;
  const stop = () => {
    running = false;
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
  };
  const frame = () => {
    if (!running) return;
    if (video.readyState >= video.HAVE_ENOUGH_DATA && video.videoWidth) {
      const scale = Math.min(1, 960 / Math.max(video.videoWidth, video.videoHeight));
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      const text = decodeImageData(context.getImageData(0, 0, canvas.width, canvas.height));
      if (text) {
        stop();
        onText(text);
        return;
      }
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  return stop;
}
