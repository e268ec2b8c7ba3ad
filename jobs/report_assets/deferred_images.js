// Large reports (jobs.report_html._DeferredImages): each picture is kept once in a JSON list
// (<script id="rs-images">, raw text to the HTML parser); report.js draws the cards a page at a time and
// calls reusescanFillImages(root) on each page, so only the pictures of the cards shown are decoded.
(function(){
  var blob = document.getElementById('rs-images');
  if (!blob) return;
  var pictures = null;  // parsed on the first page drawn
  function picture(id){
    if (pictures === null) { try { pictures = JSON.parse(blob.textContent); } catch (e) { pictures = []; } }
    return pictures[parseInt(id, 10)];
  }
  // [a, b, c, d, e, f] of canvas.setTransform for each D4 view (embedder.d4 names), on a w x h picture:
  // the picture turned/mirrored exactly as `apply_transform` does (rot90 = counter-clockwise, as numpy.rot90).
  function d4(name, w, h){
    switch (name) {
      case 'rot90': return [[0, -1, 1, 0, 0, w], h, w];
      case 'rot180': return [[-1, 0, 0, -1, w, h], w, h];
      case 'rot270': return [[0, 1, -1, 0, h, 0], h, w];
      case 'flip_h': return [[-1, 0, 0, 1, w, 0], w, h];
      case 'flip_v': return [[1, 0, 0, -1, 0, h], w, h];
      case 'transpose': return [[0, 1, 1, 0, 0, 0], h, w];
      case 'transverse': return [[0, -1, -1, 0, h, w], h, w];
      default: return [[1, 0, 0, 1, 0, 0], w, h];
    }
  }
  function turned(img, src, name){
    var pic = new Image();
    pic.onload = function(){
      var m = d4(name, pic.naturalWidth, pic.naturalHeight), canvas = document.createElement('canvas');
      canvas.width = m[1]; canvas.height = m[2];
      var ctx = canvas.getContext('2d');
      ctx.setTransform.apply(ctx, m[0]);
      ctx.drawImage(pic, 0, 0);
      img.setAttribute('src', canvas.toDataURL('image/png'));
    };
    pic.onerror = function(){ img.setAttribute('src', src); };
    pic.src = src;
  }
  var pending = 0;
  function fill(root){
    Array.prototype.forEach.call(root.querySelectorAll('img[data-img]'), function(img){
      var src = picture(img.getAttribute('data-img'));
      var name = img.getAttribute('data-t');
      img.removeAttribute('data-img');
      if (!src) return;
      if (name) { pending++; img.addEventListener('load', function(){ pending--; }, {once: true}); turned(img, src, name); }
      else img.setAttribute('src', src);
    });
  }
  var round = 0;  // a newer page drawn while an older one settles: only the newest reports
  function settled(mine){
    if (mine !== round) return;
    if (pending > 0) { setTimeout(function(){ settled(mine); }, 50); return; }  // turned pictures still being drawn
    var waiting = Array.prototype.filter.call(document.images, function(img){ return !img.complete; });
    var left = waiting.length;
    function one(){ left -= 1; if (left <= 0) finish(mine); }
    if (!left) { finish(mine); return; }
    waiting.forEach(function(img){ img.addEventListener('load', one); img.addEventListener('error', one); });
  }
  function finish(mine){
    if (mine !== round) return;
    if (window.reusescanCountImages) window.reusescanCountImages();
    document.body.setAttribute('data-images-filled', '1');
  }
  // The pictures of `root` (a page just drawn) filled in; <body data-images-filled="1"> once they all decoded.
  window.reusescanFillImages = function(root){
    round += 1;
    document.body.setAttribute('data-images-filled', '0');
    fill(root);
    settled(round);
  };
})();
