// A sample's or an invoke's data as a reader sees it: the text, or, for an image function, the
// picture behind the URL the API gives as its data.

import * as api from './api.js';
import { h } from './ui.js';

const IMAGE_ROUTE = /\/v1\/functions\/[^/]+\/images\/[0-9a-f]{64}$/;

export const isPicture = (data) => typeof data === 'string' && IMAGE_ROUTE.test(data);

/** The text itself, or an <img> (size 'large' or 'small') that shows the picture once fetched. */
export function shown(data, size) {
  if (!isPicture(data)) return data;
  const img = h('img', {
    class: `thumb ${size}`, alt: 'picture (loading)', 'data-testid': 'picture', 'data-state': 'loading',
  });
  api.picture(data).then((src) => {
    img.src = src;
    img.alt = 'picture';
    img.dataset.state = 'shown';
  }, (err) => {
    img.alt = `picture unavailable: ${err.message}`;
    img.dataset.state = 'failed';
  });
  return img;
}
