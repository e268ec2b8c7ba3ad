
(function(){
  "use strict";
  var results = document.getElementById('results');
  var sortSel = document.getElementById('sort');
  var minScore = document.getElementById('minscore');
  var minOut = document.getElementById('minscore-out');
  var kindSel = document.getElementById('kind');
  var docFilter = document.getElementById('docfilter');
  var countEl = document.getElementById('count');
  var emptyEl = document.getElementById('empty');
  var total = document.querySelectorAll('.card').length;

  function keyOf(el, mode){
    if (mode === 'doc') return el.dataset.docKey || '';
    return parseFloat(el.dataset.score || '0');
  }
  function cmp(mode){
    return function(x, y){
      var a = keyOf(x, mode), b = keyOf(y, mode);
      if (mode === 'doc') { var c = a < b ? -1 : a > b ? 1 : 0; if (c) return c; return parseFloat(y.dataset.score) - parseFloat(x.dataset.score); }
      return mode === 'score-asc' ? a - b : b - a;
    };
  }
  function applySort(){
    var mode = sortSel.value;
    var items = Array.prototype.slice.call(results.querySelectorAll(':scope > .item'));
    items.sort(cmp(mode)).forEach(function(el){ results.insertBefore(el, emptyEl); });
    Array.prototype.forEach.call(results.querySelectorAll('.gcards'), function(box){
      Array.prototype.slice.call(box.children).sort(cmp(mode)).forEach(function(el){ box.appendChild(el); });
    });
  }
  function applyFilter(){
    var min = parseFloat(minScore.value);
    minOut.textContent = min.toFixed(2);
    var kind = kindSel.value;
    var needle = docFilter.value.trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(results.querySelectorAll('.item'), function(item){
      var any = false;
      Array.prototype.forEach.call(item.querySelectorAll('.card'), function(card){
        var ok = parseFloat(card.dataset.score) >= min - 1e-9 &&
                 (kind === 'all' || card.dataset.kind === kind) &&
                 (!needle || (card.dataset.docs || '').indexOf(needle) !== -1);
        card.hidden = !ok;
        if (ok) { any = true; shown++; }
      });
      item.hidden = !any;
    });
    countEl.textContent = shown + ' of ' + total + ' pairs';
    emptyEl.style.display = shown ? 'none' : '';
  }
  // The view state lives in the URL fragment (#sort=doc&min=0.9&kind=inter&doc=name) so a
  // filtered view can be bookmarked or shared as a link to this file.
  function readHash(){
    var h = (location.hash || '').replace(/^#/, '');
    if (!h) return;
    h.split('&').forEach(function(kv){
      var i = kv.indexOf('='); if (i < 0) return;
      var k = decodeURIComponent(kv.slice(0, i)), v = decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
      if (k === 'sort' && ['score-desc','score-asc','doc'].indexOf(v) !== -1) sortSel.value = v;
      else if (k === 'min' && isFinite(parseFloat(v))) minScore.value = String(Math.max(0, Math.min(1, parseFloat(v))));
      else if (k === 'kind' && ['all','inter','intra'].indexOf(v) !== -1) kindSel.value = v;
      else if (k === 'doc') docFilter.value = v;
    });
  }
  function writeHash(){
    var parts = [];
    if (sortSel.value !== 'score-desc') parts.push('sort=' + encodeURIComponent(sortSel.value));
    if (parseFloat(minScore.value) > 0) parts.push('min=' + encodeURIComponent(minScore.value));
    if (kindSel.value !== 'all') parts.push('kind=' + encodeURIComponent(kindSel.value));
    if (docFilter.value) parts.push('doc=' + encodeURIComponent(docFilter.value));
    try { history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname + location.search); } catch (e) {}
  }
  sortSel.addEventListener('change', function(){ applySort(); writeHash(); });
  [minScore, kindSel, docFilter].forEach(function(el){
    el.addEventListener('input', function(){ applyFilter(); writeHash(); });
    el.addEventListener('change', function(){ applyFilter(); writeHash(); });
  });
  readHash();
  applySort();
  applyFilter();

  // Flicker comparison: hovering/tapping "B aligned to A" shows A in its place.
  Array.prototype.forEach.call(document.querySelectorAll('.card'), function(card){
    var al = card.querySelector('img.ialigned');
    var a = card.querySelector('img.ithumb');
    if (!al || !a) return;
    var own = al.getAttribute('src'), box = al.parentNode;
    function showA(){ al.setAttribute('src', a.getAttribute('src')); box.classList.add('flick'); }
    function showB(){ al.setAttribute('src', own); box.classList.remove('flick'); }
    box.addEventListener('mouseenter', showA);
    box.addEventListener('mouseleave', showB);
    box.addEventListener('click', function(){ if (box.classList.contains('flick')) showB(); else showA(); });
  });

  // Self-check used by the browser test: how many images decoded.
  function countImages(){
    var ok = 0, broken = 0;
    Array.prototype.forEach.call(document.images, function(img){
      if (img.complete && img.naturalWidth > 0) ok++; else broken++;
    });
    document.body.setAttribute('data-images-ok', String(ok));
    document.body.setAttribute('data-images-broken', String(broken));
  }
  window.addEventListener('load', countImages);
  if (document.readyState === 'complete') countImages();
})();
