// A sample's or an invoke's data as a reader sees it: the text, or, for an image function, the
// picture behind the URL the API gives as its data: this API's images route (fetched with the
// token), or a presigned link to the bucket (shown as it is; the page's policy allows its origin).

import * as api from './api.js';
import { h } from './ui.js';

const PICTURE = /\/images\/[0-9a-f]{64}$/;
const API_ROUTE = /^\/v1\/functions\/[^/]+\/images\/[0-9a-f]{64}$/;

function pathOf(data) {
  if (typeof data !== 'string' || !/^https?:\/\//.test(data)) return null;
  try {
    return new URL(data).pathname;
  } catch {
    return null;
  }
}

export const isPicture = (data) => PICTURE.test(pathOf(data) ?? '');

/** The text itself, or an <img> (size 'large' or 'small') that shows the picture once fetched. */
export function shown(data, size) {
  if (!isPicture(data)) return data;
  const img = h('img', {
    class: `thumb ${size}`, alt: 'picture (loading)', 'data-testid': 'picture', 'data-state': 'loading',
  });
  const failed = (why) => {
    img.alt = `picture unavailable: ${why}`;
    img.dataset.state = 'failed';
  };
  const source = API_ROUTE.test(pathOf(data)) ? api.picture(data) : Promise.resolve(data);
  source.then((src) => {
    img.addEventListener('load', () => {
      img.alt = 'picture';
      img.dataset.state = 'shown';
    }, { once: true });
    img.addEventListener('error', () => failed('it did not load (an expired link?)'), { once: true });
    img.src = src;
  }, (err) => failed(err.message));
  return img;
}
